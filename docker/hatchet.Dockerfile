# Stand-in for Hatchet's official images (ghcr.io/hatchet-dev/hatchet/hatchet-{engine,api,migrate,admin}),
# for machines with no image registry: the same binaries (built by `make tools` from the Go module proxy
# at the pinned tag) at the same paths (/hatchet/hatchet-<command>), on a small Debian whose busybox
# provides the `sh` and `wget` the official (alpine) images have.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
COPY bin/ /hatchet/
# The official images are alpine, whose busybox provides wget (health checks); so does this one's.
RUN ln -s /bin/busybox /usr/local/bin/wget
WORKDIR /hatchet
CMD ["/hatchet/hatchet-engine"]
