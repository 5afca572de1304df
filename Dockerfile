# Multi-stage build: a static binary in a distroless, non-root image.
# Reviewed, not built, on the development machines (no Docker engine there).
#
#   docker build \
#     --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     -t gunicorn-reflex .
#
# Base images are named by tag, not pinned by digest: a digest can only be
# read from the registry, which these machines cannot reach, and a digest
# copied from elsewhere could not be checked here. To pin (recommended for
# reproducible builds), resolve the tags where a registry is reachable, e.g.
#   docker buildx imagetools inspect golang:1.26-bookworm   (or: crane digest ...)
# and pass them without editing this file:
#   --build-arg GO_IMAGE=golang:1.26-bookworm@sha256:<digest>
#   --build-arg RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:<digest>
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# .git is not in the build context (.dockerignore), so the version and
# revision come from build args; the Makefile puts them in the binary
# (gunicorn-reflex --version, and the reflex_build_info metric).
ARG VERSION=dev
ARG REVISION=unknown
ARG BRANCH=
# /out/state becomes the receiver's state directory in the image (the
# distroless runtime has no shell to create it).
RUN mkdir -p /out/state && make build BINARY=/out/gunicorn-reflex \
	VERSION="$VERSION" REVISION="$REVISION" BRANCH="$BRANCH" && \
	/out/gunicorn-reflex --version

FROM ${RUNTIME_IMAGE}
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="gunicorn-reflex" \
	org.opencontainers.image.version="$VERSION" \
	org.opencontainers.image.revision="$REVISION" \
	org.opencontainers.image.source="https://github.com/gunicorn-reflex/gunicorn-reflex"
COPY --from=build /out/gunicorn-reflex /usr/local/bin/gunicorn-reflex
# The remediation receiver (receiver.enabled, off by default) keeps its
# state_file, queue journal and audit_log here; they must survive a new
# container, or every alert could act again and every cooldown restart:
# mount a volume (-v gunicorn-reflex-state:/var/lib/gunicorn-reflex).
COPY --from=build --chown=65532:65532 /out/state /var/lib/gunicorn-reflex
VOLUME /var/lib/gunicorn-reflex
# 65532 is distroless's "nonroot". Docker gives a non-root user no effective
# capabilities (--cap-add only fills its inheritable set), so to read the
# /proc state of another user's Gunicorn run with --pid=host and either
# --user=<Gunicorn's uid> (when Gunicorn does not start as root) or
# --user=0 --cap-drop=ALL --cap-add=SYS_PTRACE --cap-add=DAC_READ_SEARCH.
# The receiver signals Gunicorn masters by their host pid (SIGTTIN, SIGTTOU,
# SIGHUP through a pidfd): it needs --pid=host always, and either Gunicorn's
# uid or, as uid 0, --cap-add=KILL as well. It restarts units only through
# the host's systemd (D-Bus): that needs
# -v /run/dbus/system_bus_socket:/run/dbus/system_bus_socket, and polkit
# then sees the container's uid; as uid 0 that is root, which systemd lets
# restart any unit, so leave the socket out unless restart is allowed, and
# prefer --user=<a dedicated uid> with deploy/50-gunicorn-reflex.rules.
USER 65532:65532
EXPOSE 9615
ENTRYPOINT ["/usr/local/bin/gunicorn-reflex"]
