/* types.c - the object types a mount shows: the one place the registry
 * (cache/model/objtypes.h) is built, once at mount, and the per-type mount
 * options resolved against it. Everything after reads h->types, which is
 * immutable until unmount.
 *
 * Discovery costs at most two calls, made only when -o types= may need them:
 *   GET /crm-object-schemas/v3/schemas        the account's custom objects
 *   GET /crm/v3/object-library/enablement     which object-library types
 *                                             (services, courses, listings,
 *                                             appointments) the account has
 * A 403 (the token lacks crm.schemas.custom.read, say) or a 404 leaves those
 * types out: the mount shows the rest, warns on stderr and writes a line to
 * errors.log. Any other failure (HubSpot unreachable, 5xx or 429 past
 * op_timeout) refuses the mount, as an unreachable account-info call does: a
 * mount silently lacking directories would look to a backup script like an
 * account whose records were deleted. A schemas answer hubfs cannot parse
 * leaves the custom objects out, loudly, so that one odd schema never keeps
 * the account from mounting.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client/log.h"
#include "fs/hubfs.h"

_Static_assert(OBJTYPES_MAX <= INO_TYPES_MAX, "a type idx must fit an inode number");

/* The option names props_<name> took before types came from a registry, in
 * the order of struct hubfs_opts.shown. */
static const char *const core_names[] = { "contacts", "companies", "deals", "tickets" };

/* A warning: stderr now, errors.log once it is open (hubfs_types_report). */
static void G_GNUC_PRINTF(2, 3) note(struct hubfs *h, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	fprintf(stderr, "hubfs: warning: %s\n", s);
	if (!h->type_notes)
		h->type_notes = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(h->type_notes, s);
}

/* A standard type named by s (directory name, objectTypeId, singular or any
 * case of them), or NULL. */
static const struct objtype *standard_named(const char *s)
{
	const struct objtype *t;

	for (unsigned i = 0; (t = objtypes_standard_at(i)); i++)
		if (g_ascii_strcasecmp(t->name, s) == 0 || strcmp(t->id, s) == 0 ||
		    g_ascii_strcasecmp(t->singular, s) == 0 ||
		    (t->path && g_ascii_strcasecmp(t->path, s) == 0))
			return t;
	return NULL;
}

/* -o types= with '+' (and '\,'-escaped ',') between names, as the registry
 * takes it: comma-separated. g_free. */
static char *types_list(const char *opt)
{
	char *s = g_strdup(opt ? opt : "");

	g_strdelimit(s, "+", ',');
	return s;
}

/* Which discovery calls -o types= needs: the schemas call unless every name
 * is a standard type (or core); enablement unless no name is an
 * object-library type. */
static void calls_needed(const char *list, bool *schemas, bool *enablement)
{
	gchar **tok;

	*schemas = *enablement = false;
	if (!*list) {
		*schemas = *enablement = true;
		return;
	}
	tok = g_strsplit(list, ",", -1);
	for (gchar **p = tok; *p; p++) {
		const char *s = g_strstrip(*p);
		const struct objtype *t;

		if (!*s || strcmp(s, "core") == 0)
			continue;
		if (strcmp(s, "all") == 0) {
			*schemas = *enablement = true;
		} else if ((t = standard_named(s))) {
			*enablement |= (t->flags & OTF_OBJECT_LIBRARY) != 0;
		} else {
			*schemas = true;
		}
	}
	g_strfreev(tok);
}

/* One discovery GET. 0 and *out; 1 when HubSpot refused it for good (403
 * or 404: what it would tell is left out, *why says so); -1 after printing
 * why the mount cannot go on. */
static int discover(struct hubfs *h, const char *path, const char *what, json_object **out,
		    char **why)
{
	struct hs_call call = { .prio = RL_PRIO_USER,
				.deadline_ms = hs_now_ms() + (int64_t)h->o.op_timeout_s * 1000 };
	char line[768];
	int rc = hs_request(h->hc, &call, "GET", path, NULL, out);

	if (rc == 0 && *out)
		return 0;
	json_object_put(*out);
	*out = NULL;
	hs_error_line(line, sizeof(line), path, &call.err);
	if (rc == -EACCES && call.err.http_status == 403) {
		const char *sc = call.err.scopes[0] ? call.err.scopes :
				 strcmp(what, "custom objects") == 0 ? "crm.schemas.custom.read" :
				 "(HubSpot did not say which)";

		*why = g_strdup_printf("%s not shown: the token lacks %s %s (%s)", what,
				       strchr(sc, ' ') ? "one of the scopes" : "the scope", sc, line);
		return 1;
	}
	if (rc == -ENOENT) {
		*why = g_strdup_printf("%s not shown: HubSpot does not serve %s (%s)", what, path,
				       line);
		return 1;
	}
	fprintf(stderr, "hubfs: cannot discover the account's object types (%s): %s; "
		"refusing to mount\n", what, rc == 0 ? "empty answer" : line);
	return -1;
}

/* Resolve props_<name>= of the types other than the four into h->shown. */
static void props_more(struct hubfs *h)
{
	for (guint i = 0; h->o.props_more && i < h->o.props_more->len; i++) {
		const char *opt = g_ptr_array_index(h->o.props_more, i), *eq = strchr(opt, '=');
		g_autofree char *name = g_strndup(opt, (size_t)(eq - opt));
		const struct objtype *t = objtypes_by_name(h->types, name, strlen(name));

		if (!t)
			t = objtypes_lookup(h->types, name);
		if (t)
			h->shown[t->idx] = eq + 1;
		else
			note(h, "props_%s: this mount shows no type called %s (ignored)", name, name);
	}
}

int hubfs_types_setup(struct hubfs *h)
{
	struct objtypes_opts o = { 0 };
	json_object *schemas = NULL, *enablement = NULL;
	g_autofree char *list = types_list(h->o.types);
	char *why_s = NULL, *why_e = NULL;
	const char *why = NULL;
	bool need_s, need_e;
	int rc = 0;
	size_t n;

	calls_needed(list, &need_s, &need_e);
	if (need_s && (rc = discover(h, "/crm-object-schemas/v3/schemas", "custom objects",
				     &schemas, &why_s)) < 0)
		return -1;
	if (need_e && (rc = discover(h, "/crm/v3/object-library/enablement",
				     "object-library types (services, courses, listings, "
				     "appointments)", &enablement, &why_e)) < 0) {
		json_object_put(schemas);
		return -1;
	}
	if (why_s)
		note(h, "%s", why_s);
	if (why_e)
		note(h, "%s", why_e);
	g_free(why_s);
	g_free(why_e);

	o.types = list;
	rc = objtypes_new(&o, schemas, enablement, &h->types, &why);
	if (rc == -EINVAL && schemas) {
		note(h, "custom objects not shown: HubSpot's schemas answer is not understood: %s",
		     why);
		rc = objtypes_new(&o, NULL, enablement, &h->types, &why);
	}
	json_object_put(schemas);
	json_object_put(enablement);
	if (rc < 0) {
		fprintf(stderr, "hubfs: %s; refusing to mount\n", why ? why : strerror(-rc));
		return -1;
	}
	if (why)
		note(h, "%s", why);
	n = objtypes_count(h->types);
	if (n > INO_TYPES_MAX) { /* objtypes_new refuses this already: inodes have 6 bits */
		fprintf(stderr, "hubfs: %zu object types are more than the %u a mount can show; "
			"refusing to mount\n", n, INO_TYPES_MAX);
		return -1;
	}
	if (n == 0) {
		fprintf(stderr, "hubfs: -o types=%s leaves no object type to show; refusing to "
			"mount\n", h->o.types ? h->o.types : "");
		return -1;
	}
	h->shown = g_new0(const char *, n);
	for (size_t i = 0; i < G_N_ELEMENTS(core_names); i++) {
		const struct objtype *t = objtypes_by_name(h->types, core_names[i],
							   strlen(core_names[i]));

		if (t)
			h->shown[t->idx] = h->o.shown[i];
	}
	props_more(h);
	log_info("showing %zu object types", n);
	return 0;
}

void hubfs_types_report(struct hubfs *h)
{
	for (guint i = 0; h->type_notes && i < h->type_notes->len; i++)
		hubfs_error_say(h, "mount", NULL, g_ptr_array_index(h->type_notes, i));
}

void hubfs_type_denied(void *ud, const struct objtype *type, const char *scopes,
		       const char *line)
{
	struct hubfs *h = ud;
	g_autofree char *reason = g_strdup_printf("HubSpot refuses this token the %s: it lacks %s %s; "
						  "%s/ answers EACCES until a token with it is "
						  "mounted (%s)", type->name, strchr(scopes, ' ') ?
						  "one of the scopes" : "the scope", scopes,
						  type->name, line);

	hubfs_error_say(h, "read", type->name, reason);
}

void hubfs_types_free(struct hubfs *h)
{
	if (h->type_notes)
		g_ptr_array_free(h->type_notes, true);
	h->type_notes = NULL;
	g_free(h->shown);
	h->shown = NULL;
	objtypes_free(h->types);
	h->types = NULL;
}
