/* test_harden.c - hubfs_harden_process (fs/opts.c), which main() calls
 * first: the process is no longer dumpable (no core file with the token; no
 * ptrace, /proc/PID/mem or environ for the user's other processes) and its
 * core size limit is 0. The mount tests check environ and the limit from
 * outside; dumpability can only be read from inside. */
#include <sys/prctl.h>
#include <sys/resource.h>

#include "fs/hubfs.h"
#include "tests/unit/test.h"

int main(void)
{
	struct rlimit rl;

	ASSERT_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);
	hubfs_harden_process();
	ASSERT_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	ASSERT_EQ(getrlimit(RLIMIT_CORE, &rl), 0);
	ASSERT_EQ(rl.rlim_cur, 0);
	ASSERT_EQ(rl.rlim_max, 0);
	return 0;
}
