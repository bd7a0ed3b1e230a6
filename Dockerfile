# Dockerfile -- mod_kvlsm from its Debian package.  Stage 1 builds
# libapache2-mod-kvlsm with `make deb` (which installs the build
# dependencies from debian/control); stage 2 is a plain Debian with
# Apache and that package: the module enabled, the store in
# /var/lib/kvlsm (a volume).
# The packaged kvlsm.conf listens on 127.0.0.1:8081, the container's own
# loopback: to publish the port, mount a kvlsm.conf that listens on the
# container's network with access control in front (README, "Opening it
# to a network") over /etc/apache2/mods-available/kvlsm.conf.
FROM debian:bookworm AS build
ENV DEBIAN_FRONTEND=noninteractive
COPY . /src/mod_kvlsm
WORKDIR /src/mod_kvlsm
RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && make deb

FROM debian:bookworm
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /src/mod_kvlsm/build/libapache2-mod-kvlsm_*.deb /tmp/
RUN apt-get update \
 && apt-get install -y --no-install-recommends apache2 /tmp/libapache2-mod-kvlsm_*.deb \
 && rm -rf /var/lib/apt/lists/* /tmp/libapache2-mod-kvlsm_*.deb
VOLUME /var/lib/kvlsm
EXPOSE 8081
CMD ["apache2ctl", "-D", "FOREGROUND"]
