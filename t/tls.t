# tls.t -- the store behind TLS and HTTP/2, as README's "Opening it to a
# network" configures it: mod_ssl with `SSLEngine on` and `Protocols h2
# http/1.1`, and cleartext h2c.  Sets, reads, deletes, bad input and an
# error Apache answers itself (Require) go through curl over h2, several
# streams on one connection; every answer is JSON.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use File::Temp qw(tempdir);
use JSON::PP;
use KVTest;

my $mods = '/usr/lib/apache2/modules';
plan tests => 14, need({
    "mod_ssl and mod_http2 in $mods" => -f "$mods/mod_ssl.so" && -f "$mods/mod_http2.so",
    'curl with HTTP/2 (nghttp2)' => scalar(`curl -V 2>/dev/null` =~ /nghttp2/),
    'openssl' => -x '/usr/bin/openssl',
});

my $dir = tempdir('kvlsm-tls-XXXXXX', TMPDIR => 1, CLEANUP => 1);
system("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
       . " -keyout $dir/key.pem -out $dir/cert.pem -addext subjectAltName=IP:127.0.0.1 2>/dev/null") == 0
    or die 'openssl failed';
my $common = <<"CONF";
LoadModule socache_shmcb_module $mods/mod_socache_shmcb.so
LoadModule ssl_module $mods/mod_ssl.so
LoadModule http2_module $mods/mod_http2.so
<Location "/private">
    Require all denied
</Location>
CONF
my $tls = start_apache(mpm => 'event', servers => 2, dir => $dir, extra => <<"CONF");
$common
SSLEngine on
SSLCertificateFile "$dir/cert.pem"
SSLCertificateKeyFile "$dir/key.pem"
Protocols h2 http/1.1
CONF
my $h2c = start_apache(mpm => 'event', servers => 2, extra => "$common\nProtocols h2c http/1.1\n");

# curl, several requests on one connection (or, with $one_each, one
# connection per request): [ [version, status, body], ... ]
sub curl {
    my ($opts, $one_each, @reqs) = @_;
    return map { curl($opts, 0, $_) } @reqs if $one_each && @reqs > 1;
    my @args = ('curl', '-sS', @$opts, '--cacert', "$dir/cert.pem");
    my $first = 1;
    for my $r (@reqs) {
        my ($method, $url, $body) = @$r;
        push @args, '--next', @$opts, '--cacert', "$dir/cert.pem" unless $first;
        $first = 0;
        push @args, '-X', $method, '-w', '\n%{http_version} %{http_code}\n', $url;
        push @args, '--data-binary', $body if defined $body;
    }
    open my $fh, '-|', @args or die "curl: $!";
    local $/;
    my $out = <$fh>;
    close $fh;
    my @res;
    while ($out =~ /\G(.*?)\n(\S+) (\d{3})\n/gs) {
        push @res, [ $2, $3, $1 ];
    }
    return @res;
}

# Debian 12's curl (7.88) fails a second request on a reused h2c
# connection against any handler (mod_status too: "Error in the HTTP2
# framing layer"), so h2c is tested one connection per request.
for my $case ([ 'h2 over TLS', ['--http2'], 0, "https://127.0.0.1:$tls->{port}" ],
              [ 'h2c', ['--http2-prior-knowledge'], 1, "http://127.0.0.1:$h2c->{port}" ]) {
    my ($name, $opts, $one_each, $url) = @$case;
    my @r = curl($opts, $one_each,
                 [ POST => "$url/set", '{"key":"tls","value":"over h2"}' ],
                 [ GET => "$url/get?key=tls" ],
                 [ POST => "$url/set", '{"key":"tls"' ],
                 [ GET => "$url/private/get?key=tls" ],
                 [ DELETE => "$url/del?key=tls" ],
                 [ GET => "$url/get?key=tls" ]);
    ok t_cmp(join(' ', map { $_->[0] } @r), '2 2 2 2 2 2', "$name: every answer came over HTTP/2");
    my @j = map { eval { decode_json($_->[2]) } || {} } @r;
    ok t_cmp($r[0][1], 200, "$name: set");
    ok t_cmp("$r[1][1] $j[1]{value}", '200 over h2', "$name: get reads it");
    ok t_cmp("$r[2][1] " . ($j[2]{error} // ''), '400 invalid JSON', "$name: bad input gets a JSON 400");
    ok t_cmp("$r[3][1] " . ($j[3]{error} // ''), '403 forbidden', "$name: Require still applies, answered in JSON");
    ok t_cmp("$r[4][1] $j[4]{value}", '200 over h2', "$name: del returns the old value");
    ok t_cmp($r[5][1], 404, "$name: and it is gone");
}
stop_apache($tls);
stop_apache($h2c);
