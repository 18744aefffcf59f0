/* webhook-c posts a JSON webhook when a partition is plugged in, with a
 * token the host holds and adds. ../webhook in C. */
#define AIRLOCK_IMPLEMENTATION
#include "airlock.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* json_str appends s to out as a JSON string (the values here are plain). */
static void json_str(char *out, size_t cap, const char *s) {
	size_t n = strlen(out);
	if (n + 1 < cap)
		out[n++] = '"';
	for (; *s && n + 3 < cap; s++) {
		if (*s == '"' || *s == '\\')
			out[n++] = '\\';
		out[n++] = *s;
	}
	if (n + 1 < cap)
		out[n++] = '"';
	out[n] = 0;
}

/* fail frees r and fails the handler with its message, which
 * airlock_fail keeps until the SDK has logged it. */
static int fail(airlock_result *r) {
	static char why[512];
	snprintf(why, sizeof why, "%s", r->data ? r->data : airlock_errno_name(r->err));
	airlock_result_free(r);
	return airlock_fail(why);
}

static int on_udev(const airlock_uevent *e) {
	if (strcmp(e->action, "add") != 0 || e->coldplug)
		return 0;
	airlock_result url = airlock_config("url");
	if (url.err != AIRLOCK_OK)
		return fail(&url);
	/* The keys sorted, as Go's encoding/json writes a map. */
	char body[1024] = "{";
	const char *kv[] = {"device", e->devname, "event", "stick plugged in", "fstype", e->fstype, "label", e->label, "uuid", e->uuid};
	for (int i = 0; i < 10; i += 2) {
		if (i > 0)
			strncat(body, ",", sizeof body - strlen(body) - 1);
		json_str(body, sizeof body, kv[i]);
		strncat(body, ":", sizeof body - strlen(body) - 1);
		json_str(body, sizeof body, kv[i + 1]);
	}
	strncat(body, "}", sizeof body - strlen(body) - 1);

	const char *hdrs[] = {"Content-Type: application/json"};
	airlock_http_request req = {"POST", url.data, hdrs, 1, body, strlen(body)};
	airlock_http_response resp;
	airlock_result r = airlock_http_do(&req, &resp);
	airlock_result_free(&url);
	if (r.err != AIRLOCK_OK) {
		airlock_http_response_free(&resp);
		return fail(&r);
	}
	static char reply[4097];
	uint32_t got = 0, n;
	while (got < 4096 && (r = airlock_http_read(&resp, reply + got, 4096 - got, &n)).err == AIRLOCK_OK && n > 0)
		got += n;
	reply[got] = 0;
	airlock_http_response_free(&resp);
	if (r.err != AIRLOCK_OK)
		return fail(&r);
	airlock_result_free(&r);
	while (got > 0 && isspace((unsigned char)reply[got - 1]))
		reply[--got] = 0;
	/* The echo service reflects the request: its Authorization header
	 * arrives here as "Bearer [redacted]". */
	char status[12];
	snprintf(status, sizeof status, "%d", resp.status);
	airlock_infokv("webhook sent", "label", e->label, "status", status, "reply", reply, NULL);
	return 0;
}

AIRLOCK_INIT { airlock_on_udev(on_udev); }
