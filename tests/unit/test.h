/* test.h - minimal assertions for hubfs unit tests (libuv task.h style).
 * Each unit test is its own executable; exit 0 = pass, 77 = skip. */
#ifndef HUBFS_TEST_H
#define HUBFS_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...) do { fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

#define ASSERT(expr) do { if (!(expr)) FAIL("assertion failed: %s", #expr); } while (0)

#define ASSERT_INT(a, op, b) do { int64_t a_ = (int64_t)(a), b_ = (int64_t)(b); \
	if (!(a_ op b_)) FAIL("%s %s %s (%" PRId64 " vs %" PRId64 ")", #a, #op, #b, a_, b_); } while (0)
#define ASSERT_EQ(a, b) ASSERT_INT(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_INT(a, <, b)
#define ASSERT_LE(a, b) ASSERT_INT(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_INT(a, >, b)
#define ASSERT_GE(a, b) ASSERT_INT(a, >=, b)

#define ASSERT_STR(a, b) do { const char *a_ = (a), *b_ = (b); \
	if (!a_ || !b_ || strcmp(a_, b_) != 0) \
		FAIL("%s == %s (\"%s\" vs \"%s\")", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } while (0)

#define RUN(fn) do { fprintf(stderr, "  %s\n", #fn); fn(); } while (0)

#endif
