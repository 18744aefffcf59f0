package main

import (
	"fmt"
	"strings"

	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/abi"
	"github.com/airlockhq/airlock/sdk/go/cloud"
)

// vars prints a reply's fields as "k=v,k=v", in the host's order.
func vars(r abi.Record) string {
	var kv []string
	for _, f := range r {
		kv = append(kv, f.Key+"="+string(f.Value))
	}
	return strings.Join(kv, ",")
}

// scopes reads a kind of variables for the device, then for its fleet.
func scopes(read func(fleet bool) (abi.Record, error)) string {
	d, err := read(false)
	if err != nil {
		return result(err)
	}
	f, err := read(true)
	if err != nil {
		return result(err)
	}
	return "ok device " + vars(d) + " fleet " + vars(f)
}

// cloudStep runs one operation against the simulated cloud API. The
// manifest grants every operation, tags.set only for location and
// tags.delete only for owner.
func cloudStep(step string) {
	log := func(s string) { airlock.Info("cloud " + step + ": " + s) }
	switch step {
	case "device":
		d, err := cloud.ReadDevice()
		if err != nil {
			log(result(err))
			return
		}
		log("ok uuid=" + d.UUID + " name=" + d.Name)
	case "tags":
		t, err := cloud.Tags()
		if err != nil {
			log(result(err))
			return
		}
		log("ok " + vars(t))
	case "tag-set":
		log(result(cloud.SetTag("location", "roof")))
	case "tag-delete":
		deleted, err := cloud.DeleteTag("owner")
		if err != nil {
			log(result(err))
			return
		}
		log(fmt.Sprintf("ok deleted=%v", deleted))
	case "name":
		log(result(cloud.SetName("kitchen sensor")))
	case "env":
		log(scopes(cloud.Env))
	case "config":
		log(scopes(cloud.Config))
	case "fleet":
		f, err := cloud.ReadFleet()
		if err != nil {
			log(result(err))
			return
		}
		log(fmt.Sprintf("ok id=%d name=%s slug=%s device_type=%s public=%v", f.ID, f.Name, f.Slug, f.DeviceType, f.Public))
	case "tag-denied":
		log(result(cloud.SetTag("owner", "me")))
	case "name-invalid":
		log(result(cloud.SetName("")))
	default:
		airlock.Warn("unknown cloud step " + step)
	}
}
