/* automount-c mounts external storage by UUID under its label while it is
 * plugged in, counts its files, and unmounts it when it goes away.
 * ../../plugins/automount in C. */
#define AIRLOCK_IMPLEMENTATION
#include "airlock.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

/* Logged once per stick that goes while mounted, by whichever of the host's
 * mount event and the device's udev remove finds it mounted. */
#define PULLED_OUT "pulled out while mounted; unmounted (unplug only after unmounting to be sure writes are on it)"

static int attach(const airlock_uevent *e) {
	if (!*e->uuid) {
		airlock_warnkv("not mounted: the filesystem has no UUID", "device", e->devname, NULL);
		return 0;
	}
	/* Mount by UUID, which is unique, named after the label. */
	char target[256];
	const char *l = e->label;
	while (*l == ' ')
		l++;
	snprintf(target, sizeof target, "%s", l);
	for (size_t n = strlen(target); n > 0 && target[n - 1] == ' '; n--)
		target[n - 1] = 0;
	for (char *p = target; *p; p++)
		if (*p == '/')
			*p = '_';
	airlock_mount_options o = {NULL, target, NULL, 0};
	airlock_mount_info m;
	airlock_result r = airlock_mount_by_uuid(e->uuid, &o, &m);
	int rc = 0;
	if (r.err == AIRLOCK_DENIED) {
		char msg[512];
		snprintf(msg, sizeof msg, "not mounted: %s: %s", airlock_errno_name(r.err), r.data);
		airlock_warnkv(msg, "device", e->devname, NULL);
	} else if (r.err == AIRLOCK_BUSY) {
		airlock_infokv("already mounted", "device", e->devname, NULL);
	} else if (r.err != AIRLOCK_OK) {
		static char why[512]; /* airlock_fail keeps the pointer until the handler returns */
		snprintf(why, sizeof why, "%s: %s", airlock_errno_name(r.err), r.data);
		rc = airlock_fail(why);
	} else {
		int entries = 0;
		DIR *d = opendir(m.path);
		for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;)
			entries += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
		if (d != NULL)
			closedir(d);
		char n[16];
		snprintf(n, sizeof n, "%d", entries);
		airlock_infokv("mounted", "device", m.device, "path", m.path, "fstype", m.fstype, "readonly",
		               m.readonly ? "true" : "false", "entries", n, NULL);
		if (*m.note)
			airlock_warnkv(m.note, "path", m.path, NULL);
		airlock_result name = airlock_config("write_file");
		if (name.err == AIRLOCK_OK && name.len > 0 && !m.readonly) {
			char p[512];
			snprintf(p, sizeof p, "%s/%s", m.path, name.data);
			FILE *f = fopen(p, "w");
			if (f != NULL && fputs("written by the airlock automount plugin\n", f) >= 0 && fclose(f) == 0)
				airlock_infokv("wrote", "path", p, NULL);
			else
				rc = airlock_fail("writing the file failed");
		}
		airlock_result_free(&name);
	}
	airlock_result_free(&r);
	airlock_mount_info_free(&m);
	return rc;
}

/* mounted_uuid copies the UUID of the plugin's mount of e's device into
 * uuid and returns 1, or returns 0 if it has none. */
static int mounted_uuid(const airlock_uevent *e, char *uuid, size_t n) {
	airlock_mount_list l;
	airlock_result r = airlock_mounts(&l);
	int found = 0;
	for (uint32_t i = 0; r.err == AIRLOCK_OK && i < l.count && !found; i++)
		if (strcmp(l.mounts[i].device, e->devname) == 0) {
			snprintf(uuid, n, "%s", l.mounts[i].uuid);
			found = 1;
		}
	airlock_result_free(&r);
	airlock_mount_list_free(&l);
	return found;
}

static int detach(const airlock_uevent *e, const char *why) {
	airlock_mount_list l;
	airlock_result r = airlock_mounts(&l);
	for (uint32_t i = 0; r.err == AIRLOCK_OK && i < l.count; i++) {
		if (strcmp(l.mounts[i].device, e->devname) != 0)
			continue;
		/* Not found: the host detached it first, and its mount event,
		 * queued behind this event, logs the stick. */
		airlock_result u = airlock_unmount(l.mounts[i].target, NULL);
		if (u.err == AIRLOCK_OK)
			airlock_warnkv(PULLED_OUT, "target", l.mounts[i].target, "device", l.mounts[i].device, "reason", why,
			               NULL);
		airlock_result_free(&u);
	}
	airlock_result_free(&r);
	airlock_mount_list_free(&l);
	return 0;
}

/* whole_disk_fs: a filesystem on the disk itself, no partition table. */
static int whole_disk_fs(const airlock_uevent *e) {
	const char *usage = airlock_uevent_prop(e, "ID_FS_USAGE");
	const char *pt = airlock_uevent_prop(e, "ID_PART_TABLE_TYPE");
	return *e->fstype && (usage == NULL || !strcmp(usage, "filesystem")) && (pt == NULL || !*pt);
}

static int on_udev(const airlock_uevent *e) {
	if (!strcmp(e->action, "remove"))
		return detach(e, "device removed");
	if (!strcmp(e->devtype, "disk") && !whole_disk_fs(e))
		return detach(e, "medium removed"); /* partitions, or the medium went */
	if (!strcmp(e->action, "add"))
		return attach(e);
	if (!strcmp(e->action, "change") && !strcmp(e->devtype, "disk")) {
		/* A superfloppy announces its filesystem with a change. */
		char uuid[128];
		if (mounted_uuid(e, uuid, sizeof uuid)) {
			if (!strcmp(uuid, e->uuid))
				return 0; /* the same medium, still mounted */
			detach(e, "medium changed");
		}
		return attach(e);
	}
	return 0;
}

static int on_mount(const airlock_mount_event *e) {
	airlock_warnkv(PULLED_OUT, "target", e->target, "device", e->device, "reason", e->reason, NULL);
	return 0;
}

AIRLOCK_INIT {
	airlock_on_udev(on_udev);
	airlock_on_mount(on_mount);
}
