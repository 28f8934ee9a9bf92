/* sandbox.h - run the HubSpot sandbox (tests/sandbox/) for a C unit test.
 *
 * sandbox_start(srcroot, "--contacts", "250", …, NULL) starts it on a free
 * loopback port with token "unit-token" and rate limits off, and fills
 * sandbox_url. A sandbox that does not come up fails the test (exit 1, with
 * why): python3 is a dependency of the test suite, so a missing sandbox is a
 * broken setup, not a reason to skip (exit 77 would hide it).
 * The sandbox dies with the test (PR_SET_PDEATHSIG), even if the test aborts.
 * sandbox_client() makes a client of it; calls() counts the API calls a client
 * made to one endpoint. */
#ifndef HUBFS_TEST_SANDBOX_H
#define HUBFS_TEST_SANDBOX_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <json-c/json.h>

#include "client/hubspot.h"

static pid_t sandbox_pid;
static char sandbox_url[64];

static void sandbox_start(const char *srcroot, ...)
{
	g_autofree char *dir = g_dir_make_tmp("hubfs-test-XXXXXX", NULL);
	g_autofree char *portfile = g_build_filename(dir, "port", NULL);
	GPtrArray *argv = g_ptr_array_new();
	const char *a;
	char *port = NULL;
	va_list ap;

	for (const char *base[] = { "python3", "-m", "tests.sandbox", "--port", "0", "--token",
				    "unit-token", "--rate-limit", "off", "--port-file", NULL },
	     **p = base; *p; p++)
		g_ptr_array_add(argv, (gpointer)*p);
	g_ptr_array_add(argv, portfile);
	va_start(ap, srcroot);
	while ((a = va_arg(ap, const char *)))
		g_ptr_array_add(argv, (gpointer)a);
	va_end(ap);
	g_ptr_array_add(argv, NULL);

	sandbox_pid = fork();
	if (sandbox_pid < 0) {
		fprintf(stderr, "fork failed\n");
		exit(1);
	}
	if (sandbox_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		if (chdir(srcroot) != 0)
			_exit(127);
		execv("/usr/bin/python3", (char **)argv->pdata);
		_exit(127);
	}
	g_ptr_array_free(argv, TRUE);
	for (int i = 0; i < 300 && !port; i++) {
		int st;

		usleep(50000);
		if (!g_file_get_contents(portfile, &port, NULL, NULL) || !*g_strstrip(port)) {
			g_free(port);
			port = NULL;
		}
		if (!port && waitpid(sandbox_pid, &st, WNOHANG) == sandbox_pid) {
			fprintf(stderr, "FAIL: the sandbox (python3 -m tests.sandbox in %s) exited "
				"with status %d before listening\n", srcroot,
				WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
			exit(1);
		}
	}
	if (!port) {
		kill(sandbox_pid, SIGKILL);
		waitpid(sandbox_pid, NULL, 0);
		fprintf(stderr, "FAIL: the sandbox (python3 -m tests.sandbox in %s) did not listen "
			"within 15 s\n", srcroot);
		exit(1);
	}
	snprintf(sandbox_url, sizeof(sandbox_url), "http://127.0.0.1:%s", port);
	g_free(port);
	unlink(portfile);
	rmdir(dir);
}

static void sandbox_stop(void)
{
	kill(sandbox_pid, SIGTERM);
	waitpid(sandbox_pid, NULL, 0);
}

/* A client of the running sandbox (token "unit-token"); rate_max 0 keeps the
 * client's default 10-s budget. A client that cannot be made fails the test. */
static inline struct hs_client *sandbox_client(int rate_max)
{
	struct hs_client_opts o = { .api_url = sandbox_url, .token = "unit-token",
				    .rate_max = rate_max };
	struct hs_client *hc = NULL;
	const char *why = NULL;

	if (hs_client_new(&o, &hc, &why) != 0) {
		fprintf(stderr, "FAIL: no client for the sandbox at %s: %s\n", sandbox_url,
			why ? why : "(no reason)");
		exit(1);
	}
	return hc;
}

/* API calls the client made to one endpoint ("POST /crm/v3/objects/contacts/batch/read"),
 * from its own statistics. */
static int64_t calls(struct hs_client *hc, const char *endpoint)
{
	json_object *o = json_object_new_object(), *ac, *v;
	int64_t n = 0;

	hs_client_stats(hc, o);
	if (json_object_object_get_ex(o, "api_calls", &ac) && json_object_object_get_ex(ac, endpoint, &v))
		n = json_object_get_int64(v);
	json_object_put(o);
	return n;
}

#endif
