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
RUN mkdir -p /out && make build BINARY=/out/gunicorn-reflex \
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
# 65532 is distroless's "nonroot". Docker gives a non-root user no effective
# capabilities (--cap-add only fills its inheritable set), so to read the
# /proc state of another user's Gunicorn run with --pid=host and either
# --user=<Gunicorn's uid> (when Gunicorn does not start as root) or
# --user=0 --cap-drop=ALL --cap-add=SYS_PTRACE --cap-add=DAC_READ_SEARCH.
USER 65532:65532
EXPOSE 9615
ENTRYPOINT ["/usr/local/bin/gunicorn-reflex"]
