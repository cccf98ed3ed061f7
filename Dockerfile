# syntax=docker/dockerfile:1
# authgear-forwardauth: a static binary on distroless, running as non-root.
#   docker build -t authgear-forwardauth .

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/forwardauth .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/forwardauth /forwardauth
USER nonroot:nonroot
ENV LISTEN_ADDR=:8080
EXPOSE 8080
# There is no shell or curl in the image: the binary checks its own /healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/forwardauth", "healthcheck"]
ENTRYPOINT ["/forwardauth"]
