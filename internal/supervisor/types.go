package supervisor

import "encoding/json"

// Device is the reply of GET /v1/device. The supervisor adds fields over
// time; Raw keeps the whole reply so that none is lost on the way to a guest.
type Device struct {
	APIPort           int      `json:"api_port"`
	IPAddress         string   `json:"ip_address"` // space-separated list
	MACAddress        string   `json:"mac_address"`
	Commit            string   `json:"commit"`
	Status            string   `json:"status"` // "Idle", "Downloading", "Stopping"...
	DownloadProgress  *float64 `json:"download_progress"`
	OSVersion         string   `json:"os_version"`
	SupervisorVersion string   `json:"supervisor_version"`
	UpdatePending     bool     `json:"update_pending"`
	UpdateDownloaded  bool     `json:"update_downloaded"`
	UpdateFailed      bool     `json:"update_failed"`

	Raw json.RawMessage `json:"-"`
}

// StateStatus is the reply of GET /v2/state/status.
type StateStatus struct {
	Status                  string      `json:"status"`
	AppState                string      `json:"appState"` // "applied" or "applying"
	OverallDownloadProgress *float64    `json:"overallDownloadProgress"`
	Containers              []Container `json:"containers"`
	Images                  []Image     `json:"images"`
	Release                 string      `json:"release"`

	Raw json.RawMessage `json:"-"`
}

// Container is one entry of StateStatus.Containers.
type Container struct {
	Status      string `json:"status"`
	ServiceName string `json:"serviceName"`
	AppID       int    `json:"appId"`
	ImageID     int    `json:"imageId"`
	ServiceID   int    `json:"serviceId"`
	ContainerID string `json:"containerId"`
	CreatedAt   string `json:"createdAt"`
}

// Image is one entry of StateStatus.Images.
type Image struct {
	Name             string   `json:"name"`
	AppID            int      `json:"appId"`
	ServiceName      string   `json:"serviceName"`
	ImageID          int      `json:"imageId"`
	DockerImageID    string   `json:"dockerImageId"`
	Status           string   `json:"status"`
	DownloadProgress *float64 `json:"downloadProgress"`
}

// Tag is a device tag from GET /v2/device/tags.
type Tag struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HostConfig is the reply of GET /v1/device/host-config.
type HostConfig struct {
	Network struct {
		Hostname string         `json:"hostname"`
		Proxy    map[string]any `json:"proxy,omitempty"`
	} `json:"network"`

	Raw json.RawMessage `json:"-"`
}

// AppV1 is the reply of GET /v1/apps/:appId, for a single-container app.
// The reply's env (the service's environment, which may hold the app's
// secrets) is deliberately not kept: nothing can pass it on by mistake.
type AppV1 struct {
	AppID       int    `json:"appId"`
	Commit      string `json:"commit"`
	ContainerID string `json:"containerId"`
	ImageID     string `json:"imageId"` // the image's name, despite the key
	ReleaseID   int    `json:"releaseId"`
}

// AppState is one application of GET /v2/applications/state, keyed there
// by the app's name.
type AppState struct {
	AppID        int                     `json:"appId"`
	AppUUID      string                  `json:"appUuid"`
	Commit       string                  `json:"commit"`
	UpdateStatus string                  `json:"updateStatus"` // "done", "downloading", ...
	Services     map[string]ServiceState `json:"services"`
}

// ServiceState is one service of an AppState.
type ServiceState struct {
	Status           string   `json:"status"`
	Image            string   `json:"image"`
	DownloadProgress *float64 `json:"downloadProgress"`
	ReleaseID        int      `json:"releaseId"`
}

// LegacyAppState is the reply of GET /v2/applications/:appId/state:
// {commit, local: {<appId>: {services: {<imageId>: ...}}}}. Since
// supervisor v14.8 there is no "dependent" key.
type LegacyAppState struct {
	Commit string                    `json:"commit"`
	Local  map[string]LegacyAppLocal `json:"local"`

	Raw json.RawMessage `json:"-"`
}

// LegacyAppLocal is one app of LegacyAppState.Local.
type LegacyAppLocal struct {
	Services map[string]LegacyService `json:"services"` // by image id
}

// LegacyService is one service of LegacyAppLocal, by image id.
type LegacyService struct {
	Status           string   `json:"status"`
	ReleaseID        int      `json:"releaseId"`
	DownloadProgress *float64 `json:"download_progress"`
}

// VPNStatus is the vpn object of GET /v2/device/vpn.
type VPNStatus struct {
	Enabled   bool `json:"enabled"`
	Connected bool `json:"connected"`
}

// DeviceInfo is the info object of GET /v2/local/device-info.
type DeviceInfo struct {
	Arch       string `json:"arch"`
	DeviceType string `json:"deviceType"`
}

// JournalQuery is the body of POST /v2/journal-logs; the supervisor turns
// it into journalctl's arguments. Zero fields are left out.
type JournalQuery struct {
	All         bool   `json:"all,omitempty"`         // -a: show unprintable fields
	Follow      bool   `json:"follow,omitempty"`      // --follow: the stream never ends on its own
	Count       int    `json:"count,omitempty"`       // -n: the last Count entries
	Unit        string `json:"unit,omitempty"`        // -u: a systemd unit
	ContainerID string `json:"containerId,omitempty"` // -t: a syslog identifier (a container's short id)
	Format      string `json:"format,omitempty"`      // -o: "short" when empty
	Since       string `json:"since,omitempty"`       // -S: "2006-01-02 15:04:05", "-1h", ...
	Until       string `json:"until,omitempty"`       // -U
}
