# Stand-in for ghcr.io/shopify/toxiproxy:2.12.0 (built the same way: FROM scratch, the static server at
# /toxiproxy and its CLI at /toxiproxy-cli), from the pinned tag built with the Go module proxy.
FROM scratch
COPY server /toxiproxy
COPY cli /toxiproxy-cli
EXPOSE 8474
ENTRYPOINT ["/toxiproxy"]
CMD ["-host=0.0.0.0"]
