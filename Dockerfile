# Dockerfile -- mod_kvlsm on Debian's Apache: the same packages and build
# as .ci/run, the module enabled with conf/kvlsm.conf (port 8081), the
# store's directory as a volume.
FROM debian:bookworm
ENV DEBIAN_FRONTEND=noninteractive
COPY . /src/mod_kvlsm
WORKDIR /src/mod_kvlsm
RUN apt-get update \
 && apt-get install -y --no-install-recommends $(cat .ci/packages) \
 && make \
 && make install \
 && a2enmod kvlsm \
 && mkdir -p /var/lib/apache2/kvlsm \
 && chown www-data:www-data /var/lib/apache2/kvlsm \
 && rm -rf /var/lib/apt/lists/*
VOLUME /var/lib/apache2/kvlsm
EXPOSE 8081
CMD ["apache2ctl", "-D", "FOREGROUND"]
