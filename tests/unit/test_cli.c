/* cli: the progress line of hubfs sync (content, ETA, cut to the terminal). */
#include <string.h>

#include "fs/cli.h"
#include "tests/unit/test.h"

int main(void)
{
	struct cli_progress p = { .landed = 340, .remaining = 660, .batch_kind = "update",
				  .batch_type = "contacts", .batch_records = 100, .per_s = 100.0 };
	char buf[256];

	ASSERT_EQ(cli_eta_s(660, 100.0), 7);
	ASSERT_EQ(cli_eta_s(0, 0), 0);
	ASSERT_EQ(cli_eta_s(5, 0), -1);
	ASSERT_STR(cli_progress_line(&p, buf, sizeof(buf), 0),
		   "hubfs sync: 340/1000 landed (34%), ETA 0:07, 100/s, sending update of 100 contacts");
	p.waits = 3;
	p.rate_waiting = true;
	p.per_s = 0;
	ASSERT_STR(cli_progress_line(&p, buf, sizeof(buf), 0),
		   "hubfs sync: 340/1000 landed (34%), ETA --:--, sending update of 100 contacts, "
		   "waiting for the rate limit (3 waits)");
	p.rate_waiting = false;
	p.offline = true;
	ASSERT(strstr(cli_progress_line(&p, buf, sizeof(buf), 0), "HubSpot not answering"));
	/* a terminal of 40 columns gets 39: the cursor never wraps */
	ASSERT_EQ(strlen(cli_progress_line(&p, buf, sizeof(buf), 40)), 39);
	ASSERT_STR(buf, "hubfs sync: 340/1000 landed (34%), ETA ");
	/* done */
	p = (struct cli_progress){ .landed = 1000 };
	ASSERT_STR(cli_progress_line(&p, buf, sizeof(buf), 80), "hubfs sync: 1000/1000 landed (100%)");
	/* ETA past an hour stays minutes:seconds */
	p = (struct cli_progress){ .landed = 1, .remaining = 100000, .per_s = 10 };
	ASSERT(strstr(cli_progress_line(&p, buf, sizeof(buf), 0), "ETA 166:40"));
	/* a small buffer is cut, not overrun */
	ASSERT_EQ(strlen(cli_progress_line(&p, buf, 10, 0)), 9);
	return 0;
}
