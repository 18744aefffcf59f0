/* usb-logger-c logs every partition that is plugged in or pulled out, with
 * its label, UUID and filesystem type. ../usb-logger in C. */
#define AIRLOCK_IMPLEMENTATION
#include "airlock.h"

#include <stdio.h>
#include <string.h>

static int on_udev(const airlock_uevent *e) {
	const char *what = "partition plugged in";
	if (!strcmp(e->action, "remove"))
		what = "partition removed";
	else if (e->coldplug)
		what = "partition present at start";
	/* no filesystem, or two signatures (blkid's "ambivalent") */
	const char *fstype = *e->fstype ? e->fstype : "unknown";
	airlock_infokv(what, "device", e->devname, "label", e->label, "uuid", e->uuid, "fstype", fstype, NULL);
	return 0;
}

/* With a full queue the host drops events and says how many. */
static int on_dropped(const airlock_dropped *d) {
	char count[24];
	snprintf(count, sizeof count, "%llu", (unsigned long long)d->count);
	airlock_warnkv("device events were lost", "count", count, "reason", d->reason, NULL);
	return 0;
}

AIRLOCK_INIT {
	airlock_on_udev(on_udev);
	airlock_on_dropped(on_dropped);
}
