/* test_errmap.c - HTTP status -> errno, HubSpot error bodies, JSON bounds,
 * Retry-After parsing. No network. */
#include <errno.h>

#include "client/http.h"
#include "client/hubspot.h"
#include "tests/unit/test.h"

static void test_status_table(void)
{
	static const struct { long status; bool net; int expect; } t[] = {
		{ 200, false, 0 }, { 201, false, 0 }, { 204, false, 0 }, { 207, false, 0 },
		{ 299, false, 0 },
		{ 400, false, -EINVAL }, { 401, false, -EACCES }, { 403, false, -EACCES },
		{ 404, false, -ENOENT }, { 409, false, -EEXIST }, { 429, false, -EAGAIN },
		{ 402, false, -EIO }, { 405, false, -EIO }, { 413, false, -EIO },
		{ 414, false, -EIO }, { 423, false, -EIO }, { 477, false, -EIO },
		{ 500, false, -EIO }, { 502, false, -EIO }, { 503, false, -EIO },
		{ 504, false, -EIO }, { 524, false, -EIO },
		{ 100, false, -EIO }, { 301, false, -EIO }, { 0, false, -EIO },
		{ 0, true, -EIO }, { 200, true, -EIO }, { 404, true, -EIO },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int got = hs_errno_from_status(t[i].status, t[i].net);

		if (got != t[i].expect)
			FAIL("status %ld net %d: got %d want %d", t[i].status, t[i].net, got, t[i].expect);
	}
}

static void parse(struct hs_error *e, long status, const char *body, const char *hdr,
		  enum rl_policy *pol)
{
	hs_error_parse(e, status, body, body ? strlen(body) : 0, hdr, pol);
	ASSERT_EQ(e->http_status, status);
}

/* The exact error bodies HubSpot documents for 400, 401, 403, 404 and 409. */
static void test_bodies_1_4(void)
{
	struct hs_error e;
	enum rl_policy pol;

	parse(&e, 400,
	      "{\"status\":\"error\",\"message\":\"Property values were not valid: "
	      "[{\\\"isValid\\\":false,\\\"message\\\":\\\"Property \\\\\\\"description\\\\\\\" does not exist\\\","
	      "\\\"error\\\":\\\"PROPERTY_DOESNT_EXIST\\\",\\\"name\\\":\\\"description\\\","
	      "\\\"localizedErrorMessage\\\":\\\"Property \\\\\\\"description\\\\\\\" does not exist\\\","
	      "\\\"portalId\\\":244764782}]\",\"correlationId\":\"aeb5f871-7f07-4993-9211-075dc63e7cbf\","
	      "\"category\":\"VALIDATION_ERROR\",\"errors\":[{\"message\":\"Property \\\"description\\\" does not exist\","
	      "\"code\":\"PROPERTY_DOESNT_EXIST\",\"context\":{\"propertyName\":[\"description\"]}}]}",
	      NULL, &pol);
	ASSERT_STR(e.category, "VALIDATION_ERROR");
	ASSERT(strncmp(e.message, "Property values were not valid: [{\"isValid\":false,", 50) == 0);
	ASSERT(strstr(e.message, "PROPERTY_DOESNT_EXIST") != NULL);
	ASSERT_STR(e.correlation_id, "aeb5f871-7f07-4993-9211-075dc63e7cbf");
	ASSERT_EQ(pol, RL_POLICY_UNKNOWN);

	parse(&e, 401,
	      "{\"status\":\"error\",\"message\":\"Authentication credentials not found. This API supports "
	      "OAuth 2.0 authentication and you can find more details at "
	      "https://developers.hubspot.com/docs/methods/auth/oauth-overview\","
	      "\"correlationId\":\"c1\",\"category\":\"INVALID_AUTHENTICATION\"}",
	      NULL, NULL);
	ASSERT_STR(e.category, "INVALID_AUTHENTICATION");
	ASSERT(strncmp(e.message, "Authentication credentials not found.", 37) == 0);
	ASSERT_EQ(hs_errno_from_status(401, false), -EACCES);

	parse(&e, 401,
	      "{\"status\":\"error\",\"message\":\"The OAuth token used to make this call expired 0 second(s) ago.\","
	      "\"correlationId\":\"c2\",\"category\":\"EXPIRED_AUTHENTICATION\","
	      "\"context\":{\"expire time\":[\"2026-03-10T23:04:41.164Z\"]}}",
	      NULL, NULL);
	ASSERT_STR(e.category, "EXPIRED_AUTHENTICATION");
	ASSERT_STR(e.message, "The OAuth token used to make this call expired 0 second(s) ago.");

	parse(&e, 403,
	      "{\"status\":\"error\",\"message\":\"This app hasn't been granted all required scopes to make this call. "
	      "Read more about required scopes here: https://developers.hubspot.com/scopes.\","
	      "\"correlationId\":\"c3\",\"category\":\"MISSING_SCOPES\",\"errors\":[{\"message\":"
	      "\"One or more of the following scopes are required.\",\"context\":{\"requiredGranularScopes\":"
	      "[\"crm.objects.contacts.read\"]}}],\"links\":{\"scopes\":\"https://developers.hubspot.com/scopes\"}}",
	      NULL, NULL);
	ASSERT_STR(e.category, "MISSING_SCOPES");
	ASSERT_STR(e.correlation_id, "c3");

	parse(&e, 404,
	      "{\"status\":\"error\",\"message\":\"Object not found.  objectId are usually numeric.\","
	      "\"correlationId\":\"c4\",\"category\":\"OBJECT_NOT_FOUND\",\"context\":{\"id\":[\"abc\"]}}",
	      NULL, NULL);
	ASSERT_STR(e.category, "OBJECT_NOT_FOUND");
	ASSERT_STR(e.message, "Object not found.  objectId are usually numeric.");

	parse(&e, 409,
	      "{\"status\":\"error\",\"message\":\"Contact already exists. Existing ID: 37765128953\","
	      "\"correlationId\":\"c5\",\"category\":\"CONFLICT\"}",
	      NULL, NULL);
	ASSERT_STR(e.category, "CONFLICT");
	ASSERT_STR(e.message, "Contact already exists. Existing ID: 37765128953");

	parse(&e, 400,
	      "{\"status\":\"error\",\"message\":\"pipeline stage in use\",\"correlationId\":\"c6\","
	      "\"category\":\"VALIDATION_ERROR\",\"subCategory\":\"PipelineError.STAGE_ID_IN_USE\","
	      "\"context\":{\"stageIds\":[\"1\"],\"objectIds\":[\"2\"]}}",
	      NULL, NULL);
	ASSERT_STR(e.category, "VALIDATION_ERROR");
}

/* The 429 bodies HubSpot documents, one per policy (TEN_SECONDLY_ROLLING,
 * SECONDLY, DAILY). */
static void test_bodies_7_3(void)
{
	struct hs_error e;
	enum rl_policy pol;

	parse(&e, 429,
	      "{ \"status\": \"error\", \"message\": \"You have reached your daily limit.\", \"errorType\": \"RATE_LIMIT\",\n"
	      "  \"correlationId\": \"c033cdaa-2c40-4a64-ae48-b4cec88dad24\", \"policyName\": \"DAILY\",\n"
	      "  \"requestId\": \"3d3e35b7-0dae-4b9f-a6e3-9c230cbcf8dd\" }",
	      NULL, &pol);
	ASSERT_EQ(pol, RL_POLICY_DAILY);
	ASSERT_STR(e.category, "RATE_LIMIT");
	ASSERT_STR(e.message, "You have reached your daily limit.");
	ASSERT_STR(e.correlation_id, "c033cdaa-2c40-4a64-ae48-b4cec88dad24");

	parse(&e, 429,
	      "{ \"status\": \"error\", \"message\": \"You have reached your ten_secondly_rolling limit.\", "
	      "\"errorType\": \"RATE_LIMIT\", \"correlationId\": \"x\", \"policyName\": \"TEN_SECONDLY_ROLLING\", "
	      "\"groupName\": \"publicapi:private_app-api-calls-ten-secondly:1:2\" }",
	      NULL, &pol);
	ASSERT_EQ(pol, RL_POLICY_TEN_SECONDLY);

	/* secondly, without policyName: guessed from the message */
	parse(&e, 429,
	      "{\"status\":\"error\",\"message\":\"You have reached your secondly limit.\",\"errorType\":\"RATE_LIMIT\"}",
	      "hdr-corr", &pol);
	ASSERT_EQ(pol, RL_POLICY_SECONDLY);
	ASSERT_STR(e.correlation_id, "hdr-corr");
	/* legacy secondly with policyName */
	parse(&e, 429,
	      "{\"status\":\"error\",\"message\":\"You have reached your secondly limit.\",\"errorType\":\"RATE_LIMIT\","
	      "\"policyName\":\"SECONDLY\",\"groupName\":\"publicapi:hapikey-secondly:1\"}",
	      NULL, &pol);
	ASSERT_EQ(pol, RL_POLICY_SECONDLY);
	/* ten-secondly guessed from the message only */
	parse(&e, 429, "{\"message\":\"You have reached your ten_secondly_rolling limit.\"}", NULL, &pol);
	ASSERT_EQ(pol, RL_POLICY_TEN_SECONDLY);
	/* observed variant with a category */
	parse(&e, 429, "{\"status\":\"error\",\"message\":\"x\",\"category\":\"RATE_LIMITS\",\"policyName\":\"DAILY\"}",
	      NULL, &pol);
	ASSERT_STR(e.category, "RATE_LIMITS");
	ASSERT_EQ(pol, RL_POLICY_DAILY);
	/* 429 without a body */
	parse(&e, 429, "", NULL, &pol);
	ASSERT_EQ(pol, RL_POLICY_UNKNOWN);
}

static void test_odd_bodies(void)
{
	struct hs_error e;
	enum rl_policy pol;
	char big[4096];

	parse(&e, 404, "<html><body><h1>404 Not Found</h1></body></html>", "corr-h", &pol);
	ASSERT_STR(e.category, "");
	ASSERT_STR(e.message, "HTTP 404 with a non-JSON body");
	ASSERT_STR(e.correlation_id, "corr-h");
	ASSERT_EQ(pol, RL_POLICY_UNKNOWN);

	parse(&e, 404, "", NULL, NULL);
	ASSERT_STR(e.message, "HTTP 404 with an empty body");
	ASSERT_STR(e.correlation_id, "");
	hs_error_parse(&e, 502, NULL, 0, NULL, NULL);
	ASSERT_STR(e.message, "HTTP 502 with an empty body");

	parse(&e, 503, "upstream connect error\r\nor disconnect", NULL, NULL);
	ASSERT_STR(e.message, "HTTP 503: upstream connect error  or disconnect");

	/* JSON, but not an object, or without the fields */
	parse(&e, 500, "[1,2,3]", NULL, NULL);
	ASSERT_STR(e.message, "HTTP 500: [1,2,3]");
	parse(&e, 500, "{}", NULL, NULL);
	ASSERT_STR(e.message, "HTTP 500");
	ASSERT_STR(e.category, "");
	parse(&e, 400, "{\"message\": 42, \"category\": null, \"correlationId\": \"\"}", "h", NULL);
	ASSERT_STR(e.message, "HTTP 400");
	ASSERT_STR(e.correlation_id, "h");
	/* truncated JSON is not JSON */
	parse(&e, 400, "{\"message\":\"cut", NULL, NULL);
	ASSERT_STR(e.message, "HTTP 400: {\"message\":\"cut");

	/* long values are cut to the field, never mid UTF-8 character */
	{
		size_t n = 0;

		n += (size_t)snprintf(big, sizeof(big), "{\"message\":\"");
		while (n < 2000) {
			memcpy(big + n, "\xc3\xa9", 2); /* é */
			n += 2;
		}
		big[n++] = 'x'; /* 511 is odd: the cut falls inside an é */
		snprintf(big + n, sizeof(big) - n, "\",\"category\":\"%s\"}",
			 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
		parse(&e, 400, big, NULL, NULL);
		ASSERT_EQ(strlen(e.message), 510);
		ASSERT_EQ(strlen(e.category), 63);
	}
	parse(&e, 400, "{\"message\":\"a\xe2\x82\xac\"}", NULL, NULL);
	ASSERT_STR(e.message, "a\xe2\x82\xac");
}

/* 403 MISSING_SCOPES: the scopes the call needs, from errors[].context. */
static void test_missing_scopes(void)
{
	struct hs_error e;

	parse(&e, 403, "{\"status\":\"error\",\"message\":\"This app hasn't been granted all "
		  "required scopes to make this call.\",\"category\":\"MISSING_SCOPES\","
		  "\"errors\":[{\"message\":\"One or more of the following scopes are required.\","
		  "\"context\":{\"requiredGranularScopes\":[\"crm.objects.quotes.read\","
		  "\"e-commerce\"]}}]}", NULL, NULL);
	ASSERT_STR(e.category, "MISSING_SCOPES");
	ASSERT_STR(e.scopes, "crm.objects.quotes.read e-commerce");
	/* the older form, and shapes that hold none */
	parse(&e, 403, "{\"category\":\"MISSING_SCOPES\",\"errors\":[{\"context\":"
		  "{\"requiredScopes\":[\"tickets\"]}}]}", NULL, NULL);
	ASSERT_STR(e.scopes, "tickets");
	parse(&e, 403, "{\"errors\":[{\"context\":{\"requiredScopes\":\"tickets\"}}, 7, "
		  "{\"context\":[1]}, {\"context\":{\"requiredGranularScopes\":[1,null]}}]}",
		  NULL, NULL);
	ASSERT_STR(e.scopes, "");
	parse(&e, 403, "{\"errors\":{}}", NULL, NULL);
	ASSERT_STR(e.scopes, "");
	parse(&e, 400, "{\"message\":\"x\"}", NULL, NULL);
	ASSERT_STR(e.scopes, "");
}

static void test_json_parse(void)
{
	json_object *o = (json_object *)1;
	char deep[300];
	int i;

	ASSERT_EQ(hs_json_parse("", 0, &o), 0);
	ASSERT(o == NULL);
	ASSERT_EQ(hs_json_parse(" \n\t", 3, &o), 0);
	ASSERT(o == NULL);
	ASSERT_EQ(hs_json_parse("{\"a\":1}", 7, &o), 0);
	ASSERT(json_object_is_type(o, json_type_object));
	json_object_put(o);
	ASSERT_EQ(hs_json_parse("{\"a\":1}\n ", 9, &o), 0);
	json_object_put(o);
	ASSERT_EQ(hs_json_parse("123", 3, &o), 0);
	ASSERT_EQ(json_object_get_int(o), 123);
	json_object_put(o);
	/* the length is honoured: bytes after it are not read */
	ASSERT_EQ(hs_json_parse("12345", 2, &o), 0);
	ASSERT_EQ(json_object_get_int(o), 12);
	json_object_put(o);
	ASSERT_EQ(hs_json_parse("{\"a\":1} x", 9, &o), -EINVAL);
	ASSERT(o == NULL);
	ASSERT_EQ(hs_json_parse("{\"a\":1}{}", 9, &o), -EINVAL);
	ASSERT_EQ(hs_json_parse("{\"a\":", 5, &o), -EINVAL);
	ASSERT_EQ(hs_json_parse("nope", 4, &o), -EINVAL);
	/* null is JSON: no object, no error */
	o = (json_object *)1;
	ASSERT_EQ(hs_json_parse("null", 4, &o), 0);
	ASSERT(o == NULL);
	ASSERT_EQ(hs_json_parse(" null\n", 6, &o), 0);
	ASSERT(o == NULL);
	/* bytes that are not UTF-8 are read as U+FFFD */
	ASSERT_EQ(hs_json_parse("[\"A\xff\", \"\xc0\x80\"]", 12, &o), 0);
	ASSERT_STR(json_object_get_string(json_object_array_get_idx(o, 0)), "A\xef\xbf\xbd");
	ASSERT_STR(json_object_get_string(json_object_array_get_idx(o, 1)),
		   "\xef\xbf\xbd\xef\xbf\xbd");
	json_object_put(o);
	/* depth bound 64 */
	for (i = 0; i < 200; i++)
		deep[i] = '[';
	for (i = 0; i < 200; i++)
		deep[200 + i % 100] = ']';
	ASSERT_EQ(hs_json_parse(deep, 300, &o), -EINVAL);
	for (i = 0; i < 60; i++) {
		deep[i] = '[';
		deep[60 + i] = ']';
	}
	ASSERT_EQ(hs_json_parse(deep, 120, &o), 0);
	json_object_put(o);
}

static void test_retry_after(void)
{
	ASSERT_EQ(http_parse_retry_after("0", 1000), 0);
	ASSERT_EQ(http_parse_retry_after("2", 1000), 2000);
	ASSERT_EQ(http_parse_retry_after("120 ", 1000), 120000);
	ASSERT_EQ(http_parse_retry_after("-1", 1000), -1);
	ASSERT_EQ(http_parse_retry_after("soon", 1000), -1);
	/* HTTP date: Sun, 06 Nov 1994 08:49:37 GMT = 784111777 */
	ASSERT_EQ(http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111770), 7000);
	ASSERT_EQ(http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111800), 0);
}

int main(void)
{
	RUN(test_status_table);
	RUN(test_bodies_1_4);
	RUN(test_bodies_7_3);
	RUN(test_odd_bodies);
	RUN(test_missing_scopes);
	RUN(test_json_parse);
	RUN(test_retry_after);
	return 0;
}
