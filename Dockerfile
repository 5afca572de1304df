# Multi-stage build: a static binary in a distroless, non-root image.
# Reviewed, not built, on the development machines (no Docker engine there).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/gunicorn-reflex ./cmd/gunicorn-reflex

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gunicorn-reflex /usr/local/bin/gunicorn-reflex
# 65532 is distroless's "nonroot". To read another user's Gunicorn state in
# /proc, run with the host PID namespace and, if Gunicorn runs as a different
# user, the capabilities documented in the README (not as root).
USER 65532:65532
EXPOSE 9615
ENTRYPOINT ["/usr/local/bin/gunicorn-reflex"]
