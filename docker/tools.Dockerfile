# The generic local stand-in for the official images of the tools systems declare (`tools` in a server's
# `image` table of system.toml), for machines with no image registry: each tool's binaries, built by
# `make tools` from the Go module proxy at the pinned tag, at the path its declaration gives (`path`, as
# in the official image), on the local Debian base, whose busybox provides the `sh` and `wget` (health
# checks) the official (alpine) images have. The harness fills root/ from the data.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
COPY root/ /
RUN ln -sf /bin/busybox /usr/local/bin/wget
