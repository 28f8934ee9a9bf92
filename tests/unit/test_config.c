/* test_config.c - fs/config.c: what the config file may hold. No files. */
#include <errno.h>

#include <glib.h>

#include "fs/config.h"
#include "tests/unit/test.h"

/* Parse text for profile (or none); expect success. */
static void ok_profile(const char *text, const char *profile, struct config *cfg)
{
	char *why = NULL;
	int rc = config_parse(text, strlen(text), profile, cfg, &why);

	if (rc != 0)
		FAIL("refused %s: %s", text, why);
	ASSERT(why == NULL);
}

static void ok(const char *text, struct config *cfg)
{
	ok_profile(text, NULL, cfg);
}

/* Parse text; expect a refusal whose reason holds want, and never secret. */
static void bad(const char *text, const char *want)
{
	struct config cfg;
	char *why = NULL;
	int rc = config_parse(text, strlen(text), NULL, &cfg, &why);

	if (rc != -EINVAL)
		FAIL("accepted: %s", text);
	ASSERT(why != NULL);
	if (!strstr(why, want))
		FAIL("reason \"%s\" lacks \"%s\"", why, want);
	ASSERT(strstr(why, "s3cret") == NULL);
	for (int k = 0; k < CFG_NKEYS; k++)
		ASSERT(cfg.val[k] == NULL);
	ASSERT(!cfg.client_id && !cfg.client_secret && !cfg.refresh_token);
	g_free(why);
}

static void test_known_keys(void)
{
	struct config cfg;

	ok("# a comment\n[hubfs]\napi_url = https://api.hubapi.com\nttl = 30\n"
	   "props_contacts = email, firstname\nro = true\numask = 027\n\n", &cfg);
	ASSERT_STR(cfg.val[CFG_API_URL], "https://api.hubapi.com");
	ASSERT_STR(cfg.val[CFG_TTL], "30");
	ASSERT_STR(cfg.val[CFG_PROPS_CONTACTS], "email, firstname"); /* a list keeps its commas */
	ASSERT_STR(cfg.val[CFG_RO], "true");
	ASSERT_STR(cfg.val[CFG_UMASK], "027");
	ASSERT(cfg.val[CFG_CA_FILE] == NULL);
	ASSERT(!config_has_secrets(&cfg));
	config_clear(&cfg);
	for (int k = 0; k < CFG_NKEYS; k++)
		ASSERT(cfg.val[k] == NULL);

	ok("", &cfg); /* empty file: nothing set */
	config_clear(&cfg);
	ok("[hubfs]\nttl =\n", &cfg); /* empty value: as if absent */
	ASSERT(cfg.val[CFG_TTL] == NULL);
	config_clear(&cfg);
}

/* types and props_<type> of any type: lists that keep their commas; a
 * profile's props_<type> wins over [hubfs]'s, name by name. */
static void test_types_and_props_more(void)
{
	struct config cfg;

	ok("[hubfs]\ntypes = core, notes\nprops_notes = hs_note_body, hs_timestamp\n"
	   "props_0-162 = all\nprops_cars =\n", &cfg);
	ASSERT_STR(cfg.val[CFG_TYPES], "core, notes");
	ASSERT(cfg.props_more && g_strv_length(cfg.props_more) == 2);
	ASSERT_STR(cfg.props_more[0], "notes=hs_note_body, hs_timestamp");
	ASSERT_STR(cfg.props_more[1], "0-162=all");
	config_clear(&cfg);
	ASSERT(cfg.props_more == NULL);

	ok_profile("[hubfs]\nprops_notes = a\nprops_calls = b\n[profile crm]\nprops_notes = c\n"
		   "props_cars = make\n[profile other]\nprops_tasks = x\n", "crm", &cfg);
	ASSERT(g_strv_length(cfg.props_more) == 3);
	ASSERT_STR(cfg.props_more[0], "notes=c");
	ASSERT_STR(cfg.props_more[1], "cars=make");
	ASSERT_STR(cfg.props_more[2], "calls=b");
	config_clear(&cfg);

	ok("[hubfs]\nttl = 5\n", &cfg);
	ASSERT(cfg.props_more == NULL);
	config_clear(&cfg);

	bad("[hubfs]\nprops_notes = a\\,b\n", "props_notes: the value holds a backslash");
	bad("[hubfs]\nprops_ = a\n", "props_: unknown key");
	bad("[hubfs]\nprops_no.tes = a\n", "props_no.tes: unknown key");
	bad("[oauth]\nprops_notes = a\n", "[oauth] props_notes: unknown key");
	bad("[hubfs]\ntypes = core\\,notes\n", "types: the value holds a backslash");
}

static void test_oauth(void)
{
	struct config cfg;

	ok("[hubfs]\nttl = 5\nclient_id = hub-id\nrefresh_token = rt-hubfs\n"
	   "[oauth]\nclient_id = oa-id\nclient_secret = s3cret/+=x\n", &cfg);
	ASSERT_STR(cfg.client_id, "oa-id");          /* [oauth] first */
	ASSERT_STR(cfg.client_secret, "s3cret/+=x");
	ASSERT_STR(cfg.refresh_token, "rt-hubfs");   /* then [hubfs] */
	ASSERT(config_has_secrets(&cfg));
	config_clear(&cfg);
	ASSERT(cfg.client_secret == NULL);
}

static void test_refused(void)
{
	/* a value that would add a mount option */
	bad("[hubfs]\nttl = 60,allow_other\n", "ttl: the value holds a comma");
	bad("[hubfs]\napi_url = http://127.0.0.1:1/,allow_other\n", "api_url: the value holds a comma");
	bad("[hubfs]\nttl = 60\\,allow_other\n", "ttl: the value holds a backslash");
	bad("[hubfs]\nttl = 60\\nallow_other\n", "ttl: the value holds a backslash");
	bad("[hubfs]\nca_file = /a\tb\n", "ca_file: the value holds a control character");
	bad("[oauth]\nclient_secret = s3cret,x\n", "client_secret: the value holds a comma");
	bad("[hubfs]\nprops_deals = a\\,b\n", "props_deals: the value holds a backslash");
	/* only known keys and groups */
	bad("[hubfs]\nallow_other = true\n", "[hubfs] allow_other: unknown key");
	bad("[hubfs]\nttl[fr] = 5\n", "ttl[fr]: unknown key");
	bad("[oauth]\nttl = 5\n", "[oauth] ttl: unknown key");
	bad("[fuse]\ndebug = 1\n", "[fuse]: unknown group");
	bad("[profile]\nttl = 1\n", "[profile]: unknown group");
	/* a profile's section is checked as [hubfs] is, mounted or not */
	bad("[profile crm]\nttl = 60,allow_other\n", "[profile crm] ttl: the value holds a comma");
	bad("[profile crm]\nallow_other = true\n", "[profile crm] allow_other: unknown key");
	bad("[profile crm]\ntoken = s3cret\n", "token_file");
	bad("[profile crm]\nportal = 1\nportal = 2\n", "[profile crm] portal: given twice");
	bad("[profile a/b]\nttl = 1\n", "[profile a/b]: a profile name is");
	bad("ttl = 5\n", "not a key file");
	bad("[hubfs]\nttl = 5\nttl = 6\n", "ttl: given twice");
	bad("[hubfs]\ntoken = s3cret\n", "token_file");
	bad("[oauth]\ntoken = s3cret\n", "token_file");
	bad("[hubfs]\nthis line is not a key = value of s3cret\n", "unknown key");
	bad("[hubfs\ns3cret\n", "not a key file");
	{
		static const char nul[] = "[hubfs]\nttl = 5\0,allow_other\n";
		struct config cfg;
		char *why = NULL;

		ASSERT_EQ(config_parse(nul, sizeof(nul) - 1, NULL, &cfg, &why), -EINVAL);
		ASSERT(strstr(why, "NUL") != NULL);
		g_free(why);
	}
}

static void test_profiles(void)
{
	static const char text[] =
		"[hubfs]\nttl = 30\nindex_delay = 7\n"
		"[oauth]\nclient_id = oa-id\nclient_secret = oa-s3cret\nrefresh_token = oa-rt\n"
		"[profile crm]\nttl = 45\nportal = 12345678\nrefresh_token = crm-rt\n"
		"[profile eu-2.x]\nttl = 5\napi_url = http://127.0.0.1:1\n";
	struct config cfg;
	char *why = NULL;

	/* no profile: [hubfs] and [oauth] only */
	ok(text, &cfg);
	ASSERT_STR(cfg.val[CFG_TTL], "30");
	ASSERT(cfg.val[CFG_PORTAL] == NULL && cfg.val[CFG_API_URL] == NULL);
	ASSERT_STR(cfg.refresh_token, "oa-rt");
	config_clear(&cfg);
	/* the profile wins over [hubfs], key by key; credentials over [oauth] */
	ok_profile(text, "crm", &cfg);
	ASSERT_STR(cfg.val[CFG_TTL], "45");
	ASSERT_STR(cfg.val[CFG_INDEX_DELAY], "7");
	ASSERT_STR(cfg.val[CFG_PORTAL], "12345678");
	ASSERT(cfg.val[CFG_API_URL] == NULL); /* another profile's */
	ASSERT_STR(cfg.client_id, "oa-id");
	ASSERT_STR(cfg.client_secret, "oa-s3cret");
	ASSERT_STR(cfg.refresh_token, "crm-rt");
	config_clear(&cfg);
	ok_profile(text, "eu-2.x", &cfg);
	ASSERT_STR(cfg.val[CFG_TTL], "5");
	ASSERT_STR(cfg.val[CFG_API_URL], "http://127.0.0.1:1");
	ASSERT(cfg.val[CFG_PORTAL] == NULL);
	config_clear(&cfg);
	/* no such section */
	ASSERT_EQ(config_parse(text, strlen(text), "nosuch", &cfg, &why), -ENOENT);
	ASSERT(strstr(why, "[profile nosuch]") != NULL);
	ASSERT(cfg.val[CFG_TTL] == NULL && cfg.client_secret == NULL);
	g_free(why);
	/* a secret in a profile that is not mounted still counts for the mode */
	ok("[hubfs]\nttl = 5\n[profile other]\nclient_secret = s3cret\n", &cfg);
	ASSERT(cfg.client_secret == NULL);
	ASSERT(config_has_secrets(&cfg));
	config_clear(&cfg);
	ASSERT(!config_has_secrets(&cfg));
	ASSERT(config_profile_name_ok("crm") && config_profile_name_ok("eu-2_x.y"));
	ASSERT(!config_profile_name_ok("") && !config_profile_name_ok("a b") &&
	       !config_profile_name_ok("a/b") && !config_profile_name_ok("\xc3\xa9"));
}

int main(void)
{
	RUN(test_known_keys);
	RUN(test_types_and_props_more);
	RUN(test_oauth);
	RUN(test_refused);
	RUN(test_profiles);
	return 0;
}
