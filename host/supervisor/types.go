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
