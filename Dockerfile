# airlock for a balenaOS-style device. Build stage: the airlock binary and
# the bundled plugins, compiled to wasm. Run stage: a small Debian with only
# what airlock needs at run time.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
# The guest SDKs are a module of their own, which go.mod replaces with ./sdk.
COPY sdk/go.mod sdk/go.mod
RUN go mod download
COPY . .
# The context holds no .git (.dockerignore), so the version and commit that
# `airlock version` and airlock_build_info report come from build args:
#   docker build --build-arg AIRLOCK_VERSION=$(git describe --tags --always) \
#                --build-arg AIRLOCK_COMMIT=$(git rev-parse HEAD) .
ARG AIRLOCK_VERSION=""
ARG AIRLOCK_COMMIT=""
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-X github.com/airlockhq/airlock/internal/version.Version=${AIRLOCK_VERSION} -X github.com/airlockhq/airlock/internal/version.Commit=${AIRLOCK_COMMIT}" \
      -o /out/airlock ./cmd/airlock
# Each bundled plugin: its manifest and its module, nothing else.
RUN set -e; for d in plugins/automount examples/hello examples/ntp-check examples/supervisor-reboot; do \
      name=$(basename "$d"); mkdir -p "/out/plugins/$name"; \
      /out/airlock build -o "/out/plugins/$name/$name.wasm" "$d"; \
      cp "$d/plugin.toml" "/out/plugins/$name/"; \
    done

FROM debian:bookworm-slim
# No shell tools are needed by airlock itself; ca-certificates for HTTPS
# supervisors behind a proxy. The FUSE helpers mount vfat, exfat and NTFS
# sticks on device kernels that lack those drivers (the kernel's driver is
# used whenever /proc/filesystems lists it; internal/mount/README.md).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
      fusefat exfat-fuse ntfs-3g \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/airlock /usr/local/bin/airlock
COPY --from=build /out/plugins /opt/airlock/plugins
COPY docs/device/runtime.toml /etc/airlock/runtime.toml
# Every airlock command reads this config without flags, so `airlock status`
# works in the container (balena ssh, docker exec). The device's own
# additions go in /data/airlock/overlay.toml (see the config's overlay key).
ENV AIRLOCK_CONFIG=/etc/airlock/runtime.toml
# First start makes /data/airlock and compiles every plugin into its cache;
# later starts reuse it.
CMD ["airlock", "run"]
