# syntax=docker/dockerfile:1

# Build:  docker build --build-arg VERSION=$(git describe --tags --always) -t liverelay .
# Run:    docker run --stop-timeout 30 -v liverelay-data:/data -p 9090:9090 liverelay
#         (the default LIVE_SHUTDOWN_TIMEOUT is 20s, more than docker's default 10s stop timeout)

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o /out/worker ./cmd/worker
# An empty /data owned by the nonroot user, so a fresh volume mounted there is writable.
RUN mkdir -p /out/data

# distroless/static: CA certificates and tzdata, no shell, runs as 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/worker /worker
COPY --from=build --chown=65532:65532 /out/data /data
ENV LIVE_DATA_DIR=/data
# The embedded NATS server (used when LIVE_NATS_URL is empty) must listen on all
# interfaces to be reachable from other containers. It has no authentication:
# publish 4222 only on a private network, or set LIVE_NATS_URL in production.
ENV LIVE_EMBEDDED_LISTEN=0.0.0.0:4222
USER 65532:65532
VOLUME /data
EXPOSE 4222 9090
ENTRYPOINT ["/worker"]
CMD ["run"]
