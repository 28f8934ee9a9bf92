/* config.h - the text of $XDG_CONFIG_HOME/hubfs/config, parsed and checked.
 *
 * The file is a GLib key file. [hubfs] holds mount options (the keys of enum
 * config_key, each at most once) and [oauth] the OAuth app's client_id,
 * client_secret and refresh_token (also accepted under [hubfs]). A
 * [profile NAME] section (SOURCE profile:NAME) holds both kinds: its options
 * win over [hubfs]'s, its credentials over [oauth]'s and [hubfs]'s, key by
 * key. Every section is checked, whichever one is mounted. Anything else is
 * refused: another group, an unknown key, a private-app token (it belongs in
 * token_file=), a value holding ',' or '\' (a mount option list could be
 * smuggled in that way; props_<type> and types lists are the exceptions for ','), a
 * control character or a newline. Values are not interpreted here (opts.c
 * converts them); this module knows no FUSE, reads no file and touches no
 * global state, so a fuzzer can drive it.
 */
#ifndef HUBFS_CONFIG_H
#define HUBFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum config_key {
	CFG_API_URL, CFG_TOKEN_FILE, CFG_CA_FILE, CFG_RATE_LIMIT, CFG_LOG_LEVEL,
	CFG_PROPS_CONTACTS, CFG_PROPS_COMPANIES, CFG_PROPS_DEALS, CFG_PROPS_TICKETS,
	CFG_TTL, CFG_OP_TIMEOUT, CFG_INDEX_DELAY, CFG_RELIST_INTERVAL, CFG_SEARCH_PER_SEC,
	CFG_CACHE_MB, CFG_WRITEBACK_DELAY_MS, CFG_DRAIN_TIMEOUT, CFG_ALLOW_DELETE, CFG_RO,
	CFG_UMASK, CFG_PORTAL,
	CFG_WEBHOOK_LISTEN, CFG_WEBHOOK_PATH, CFG_WEBHOOK_SECRET_FILE, CFG_WEBHOOK_PUBLIC_URL,
	CFG_WEBHOOK_V1,
	CFG_AUDIT_VIEW,
	CFG_TYPES,
	CFG_REDIS, CFG_REDIS_PASSWORD_FILE,
	CFG_CACHE, CFG_CACHE_DISK_MB,
	CFG_NKEYS
};

#define CONFIG_MAX_BYTES (1 << 20)
#define CONFIG_PROFILE_MAX 64 /* bytes of a profile's name */

struct config {
	char *val[CFG_NKEYS];  /* by enum config_key; NULL if absent */
	/* OAuth credentials, or NULL; the secrets are wiped by config_clear */
	char *client_id, *client_secret, *refresh_token;
	bool secrets;          /* a client_secret or refresh_token in any section */
	/* props_<name> keys of the types beyond the four, as "name=LIST" (the
	 * profile's, then [hubfs]'s for the names the profile leaves out);
	 * NULL-terminated, or NULL when there are none */
	char **props_more;
};

/* The key's name in the file and in -o ("api_url", …). */
const char *config_key_name(enum config_key k);

/* Whether name may name a profile: 1 to CONFIG_PROFILE_MAX letters, digits,
 * '-', '_' or '.'. */
bool config_profile_name_ok(const char *name);

/* Parse len bytes of config text into *cfg (zeroed first), for the section
 * [profile <profile>] if profile is not NULL. Values are trimmed of
 * surrounding blanks; an empty value counts as absent. Returns 0; -ENOENT if
 * the text is valid but has no such profile section; or -EINVAL with a reason
 * in *why (g_free; it names the section and key and never holds a value). On
 * an error *cfg is empty. */
int config_parse(const char *text, size_t len, const char *profile, struct config *cfg,
		 char **why);

/* Free everything, wiping the secrets; *cfg is left zeroed. Accepts a zeroed cfg. */
void config_clear(struct config *cfg);

/* Whether the config holds an OAuth secret (client_secret or refresh_token)
 * in any section, the ones of profiles not mounted included. */
bool config_has_secrets(const struct config *cfg);

#endif
