/* dbus-stop-bluetooth-c stops the host's bluetooth.service through
 * systemd's StopUnit, reads its ActiveState, and shows that StopUnit on
 * ssh.service is out of reach. ../dbus-stop-bluetooth in C. */
#define AIRLOCK_IMPLEMENTATION
#include "airlock.h"

#include <stdio.h>

static int on_start(void) {
	airlock_dbus_object systemd = {"org.freedesktop.systemd1", "/org/freedesktop/systemd1", 0};
	airlock_dbus_writer args = {0};
	airlock_dbus_values reply;
	airlock_dbus_put_string(&args, "bluetooth.service");
	airlock_dbus_put_string(&args, "replace");
	airlock_result r = airlock_dbus_call(&systemd, "org.freedesktop.systemd1.Manager.StopUnit", &args, &reply);
	airlock_dbus_writer_free(&args);
	if (r.err != AIRLOCK_OK) {
		char name[256], err[512];
		snprintf(err, sizeof err, "%s: %s", airlock_errno_name(r.err), r.data);
		airlock_errorkv("stopping bluetooth.service failed", "error", err, "dbus_error",
		                airlock_dbus_error_name(&r, name, sizeof name), NULL);
		airlock_result_free(&r);
		return airlock_fail("stopping bluetooth.service failed");
	}
	airlock_result_free(&r);
	airlock_infokv("bluetooth.service stop queued", "job", reply.count == 1 ? reply.values[0].str : "", NULL);
	airlock_dbus_values_free(&reply);

	airlock_dbus_object unit = {"org.freedesktop.systemd1", "/org/freedesktop/systemd1/unit/bluetooth_2eservice", 0};
	airlock_dbus_values v;
	r = airlock_dbus_get_property(&unit, "org.freedesktop.systemd1.Unit.ActiveState", &v);
	if (r.err == AIRLOCK_OK)
		airlock_infokv("bluetooth.service", "active_state", airlock_dbus_inner(&v.values[0])->str, NULL);
	airlock_result_free(&r);
	airlock_dbus_values_free(&v);

	/* The grant names bluetooth.service only: this is denied, and says so. */
	airlock_dbus_put_string(&args, "ssh.service");
	airlock_dbus_put_string(&args, "replace");
	r = airlock_dbus_call(&systemd, "org.freedesktop.systemd1.Manager.StopUnit", &args, NULL);
	airlock_dbus_writer_free(&args);
	if (r.err != AIRLOCK_OK) {
		char err[512];
		snprintf(err, sizeof err, "%s: %s", airlock_errno_name(r.err), r.data);
		airlock_infokv("as intended, ssh.service is out of reach", "error", err, NULL);
	}
	airlock_result_free(&r);
	return 0;
}

AIRLOCK_INIT { airlock_on_start(on_start); }
