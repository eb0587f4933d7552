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
# The embedded NATS server (used when LIVE_NATS_URL is empty) listens on loopback
# only: no other container can reach it. To share it, listen on every interface and
# give it a token, which the worker's own connection uses too:
#   -e LIVE_EMBEDDED_LISTEN=0.0.0.0:4222 -e LIVE_EMBEDDED_TOKEN_FILE=/run/secrets/nats-token
# (the worker refuses a non-loopback address without LIVE_EMBEDDED_TOKEN or
# LIVE_EMBEDDED_USER/LIVE_EMBEDDED_PASSWORD). In production set LIVE_NATS_URL.
ENV LIVE_EMBEDDED_LISTEN=127.0.0.1:4222
# No shell or curl in the image: the worker asks itself (GET /readyz on LIVE_HTTP_ADDR).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/worker", "health"]
USER 65532:65532
VOLUME /data
EXPOSE 9090
ENTRYPOINT ["/worker"]
CMD ["run"]
