/* supervisor-reboot-c watches one service of the app through the device
 * supervisor and asks for a reboot when it has been down for several checks
 * in a row; an update lock refuses the reboot and the plugin asks again at
 * the next check instead of forcing it. ../supervisor-reboot in C. */
#define AIRLOCK_IMPLEMENTATION
#include "airlock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* down counts consecutive checks that found the service not running. */
static int down;

/* logerr logs msg at level with the host's error as the error field. */
static void logerr(int32_t level, const char *msg, const airlock_result *r) {
	char err[512];
	snprintf(err, sizeof err, "%s: %s", airlock_errno_name(r->err), r->data);
	airlock_logkv(level, msg, "error", err, NULL);
}

static int check(const airlock_timer *t) {
	(void)t;
	char service[129] = "main";
	int strikes = 3;
	airlock_result c = airlock_config("service");
	if (c.err == AIRLOCK_OK && c.len < sizeof service)
		memcpy(service, c.data, c.len + 1);
	airlock_result_free(&c);
	c = airlock_config("strikes");
	if (c.err == AIRLOCK_OK && atoi(c.data) > 0)
		strikes = atoi(c.data);
	airlock_result_free(&c);

	airlock_app_status st;
	airlock_result r = airlock_supervisor_state(&st);
	if (r.err != AIRLOCK_OK) {
		/* unavailable or a timeout says nothing about the service */
		logerr(AIRLOCK_LEVEL_WARN, "cannot read the device state", &r);
		airlock_result_free(&r);
		airlock_app_status_free(&st);
		return 0;
	}
	airlock_result_free(&r);
	const char *status = "";
	for (uint32_t i = 0; i < st.service_count; i++)
		if (!strcmp(st.services[i].name, service))
			status = st.services[i].status;
	if (!strcmp(status, "Running")) {
		if (down > 0)
			airlock_infokv("service is running again", "service", service, NULL);
		else
			airlock_debugkv("service is running", "service", service, NULL);
		down = 0;
		airlock_app_status_free(&st);
		return 0;
	}
	down++;
	char downs[16], of[16];
	snprintf(downs, sizeof downs, "%d", down);
	snprintf(of, sizeof of, "%d", strikes);
	airlock_warnkv("service is not running", "service", service, "status", status, "strikes", downs, "of", of, NULL);
	airlock_app_status_free(&st);
	if (down < strikes)
		return 0;

	r = airlock_supervisor_reboot(false);
	switch (r.err) {
	case AIRLOCK_OK:
		airlock_warnkv("reboot requested", "service", service, "down_for_checks", downs, NULL);
		down = 0;
		break;
	case AIRLOCK_LOCKED: /* the app holds an update lock: respect it */
		airlock_warnkv("the update lock refused the reboot; asking again at the next check", "service", service, NULL);
		break;
	case AIRLOCK_DENIED:
		logerr(AIRLOCK_LEVEL_ERROR, "reboot is not granted; add \"reboot\" to [supervisor] allow", &r);
		break;
	default:
		logerr(AIRLOCK_LEVEL_ERROR, "reboot request failed", &r);
	}
	airlock_result_free(&r);
	return 0;
}

AIRLOCK_INIT { airlock_on_timer(check); }
