# kip's container image: one static binary on distroless static:nonroot,
# no shell, running as user 65532.
#
#   docker build --build-arg VERSION=v0.1.0 --build-arg COMMIT=$(git rev-parse HEAD) \
#     -t ghcr.io/kip-proxy/kip:v0.1.0 .
#
# test/deploy runs this file's go build command itself and checks that the
# binary it makes is static and that the COPY paths hold every package kip
# needs.

ARG GO_VERSION=1.26

# The build stage runs on the builder's own platform and cross-compiles.
FROM --platform=${BUILDPLATFORM} golang:${GO_VERSION} AS build
WORKDIR /src
# The modules are a layer of their own, reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY internal/ internal/
COPY pkg/ pkg/
# VERSION and COMMIT are stamped into the binary through -X, and `kip
# version` prints them; left empty, kip calls itself v0.0.0-dev.
ARG VERSION
ARG COMMIT
ARG VERSION_PKG=github.com/kip-proxy/kip/internal/version
# Set by BuildKit from --platform; empty means the builder's own.
ARG TARGETOS
ARG TARGETARCH
# CGO off: the binary must run on an image without a C library.
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -buildvcs=false -ldflags "-s -w -X ${VERSION_PKG}.gitVersion=${VERSION} -X ${VERSION_PKG}.gitCommit=${COMMIT}" -o /out/kip ./cmd/kip

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/kip /kip
# nonroot's uid and gid; the chart's securityContext says the same.
USER 65532:65532
ENTRYPOINT ["/kip"]
