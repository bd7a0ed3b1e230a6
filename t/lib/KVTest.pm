# KVTest.pm -- helpers for the mod_kvlsm Apache::Test suite: requests with
# any method to the test server (or another Apache the test started), JSON
# answers, and standalone Apache instances on free loopback ports that a
# test starts and stops by PID.
package KVTest;
use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use File::Temp qw(tempdir);
use HTTP::Request;
use IO::Socket::INET;
use JSON::PP;
use LWP::UserAgent;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

our @EXPORT = qw(base_url req json_of start_apache stop_apache module_path top_dir free_port httpd
                 raw_connect raw_request raw_write raw_read proc_status status_conf scoreboard
                 conf_head configtest_directive set_failures get_mismatches);

my $json = JSON::PP->new->utf8->canonical;
my @started;   # instances start_apache made (stopped at exit, below)

sub top_dir {
    return $ENV{KVLSM_TOP} if $ENV{KVLSM_TOP};
    require Apache::Test;
    my $t = Apache::Test::config()->{vars}{t_dir};
    return "$t/..";
}

# The Apache binary (t/run.sh points it at a wrapper for sanitizer runs).
sub httpd { $ENV{KVLSM_HTTPD} || '/usr/sbin/apache2' }

sub module_path { top_dir() . '/.libs/mod_kvlsm.so' }

sub base_url {
    require Apache::TestRequest;
    return 'http://' . Apache::TestRequest::hostport(Apache::Test::config());
}

# req(METHOD, URL, BODY, HEADERS...) -> HTTP::Response.  A fresh connection
# each time unless a user agent is passed as ua => $ua.
sub req {
    my ($method, $url, $body, %h) = @_;
    my $ua = delete $h{ua} || LWP::UserAgent->new(timeout => 30);
    $url = base_url() . $url if $url =~ m{^/};
    my $r = HTTP::Request->new($method, $url, [%h], defined $body ? $body : ());
    return $ua->request($r);
}

# Decoded JSON body, or undef if it is not JSON.
sub json_of {
    my $res = shift;
    my $d = eval { $json->decode($res->content) };
    return $d;
}

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => 1, ReuseAddr => 1) or die "socket: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# start_apache(mpm => 'event'|'prefork', servers => N, extra => "conf lines",
#              dir => existing dir, module => path of another build of
#              mod_kvlsm.so) -> { pid, port, dir, url, conf }
sub start_apache {
    my %o = @_;
    my $mpm = $o{mpm} || 'event';
    my $dir = $o{dir} || tempdir('kvlsm-httpd-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $port = $o{port} || free_port();
    my $servers = $o{servers} || 3;
    my $mod = $o{module} || module_path();
    mkdir "$dir/data";
    my $mpmconf = $mpm eq 'prefork'
        ? "StartServers $servers\nMinSpareServers $servers\nMaxSpareServers " . ($servers + 2) . "\nMaxRequestWorkers 16\n"
        : "StartServers $servers\nServerLimit " . ($servers + 1) . "\nThreadsPerChild 8\nMaxRequestWorkers " . (8 * ($servers + 1)) . "\nMinSpareThreads 8\nMaxSpareThreads 64\n";
    my $extra = $o{extra} || '';
    $extra =~ s/\@DIR\@/$dir/g;
    # A port free_port found may be taken before Apache binds it (other
    # servers on the machine): without a port asked for, try another one
    # (5 tries).
    my $try_start = sub {
        my ($last) = @_;
        my $conf = <<"CONF";
ServerRoot "$dir"
PidFile "$dir/httpd.pid"
ErrorLog "$dir/error.log"
LogLevel info
DefaultRuntimeDir "$dir"
ServerName 127.0.0.1
LoadModule mpm_${mpm}_module /usr/lib/apache2/modules/mod_mpm_${mpm}.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule kvlsm_module "$mod"
$mpmconf
KeepAlive On
Listen 127.0.0.1:$port
KVLSMDataDir "$dir/data"
KVLSMMemtableSize 64K
<Location "/">
    SetHandler kvlsm
</Location>
$extra
CONF
        open my $fh, '>', "$dir/httpd.conf" or die "$dir/httpd.conf: $!";
        print $fh $conf;
        close $fh;
        unlink "$dir/httpd.pid";
        return 1 if system(httpd(), '-f', "$dir/httpd.conf", '-k', 'start') == 0;
        die "apache2 failed to start: " . `tail -5 $dir/error.log` unless $last;
        return 0;
    };
    for my $try (1 .. ($o{port} ? 1 : 5)) {
        $port = free_port() if $try > 1;
        last if $try_start->(!!$o{port} || $try == 5);
    }
    my $inst = { dir => $dir, port => $port, url => "http://127.0.0.1:$port", conf => "$dir/httpd.conf",
                 owner => $$ };
    push @started, $inst;
    # Ready when its pid file exists and the port answers (bounded wait).
    my $deadline = time + 20;
    while (time < $deadline) {
        if (-s "$dir/httpd.pid"
            && IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')) {
            open my $p, '<', "$dir/httpd.pid";
            chomp($inst->{pid} = <$p>);
            return $inst;
        }
        sleep 0.05;
    }
    die "apache2 did not come up on port $port: " . `tail -5 $dir/error.log`;
}

# Every instance this process started and has not stopped is stopped when
# it exits, also when a test dies half-way (an Apache left running would
# hold its port and its data directory).
END {
    my $rc = $?;
    for my $inst (@started) {
        next unless $inst->{pid} && $inst->{owner} == $$;
        eval { stop_apache($inst) };
    }
    $? = $rc;
}

# Stop by the PID Apache wrote; wait (bounded) until it is gone.
sub stop_apache {
    my ($inst, $signal) = @_;
    return unless $inst->{pid};
    kill($signal || 'TERM', $inst->{pid});
    my $deadline = time + 20;
    while (time < $deadline && kill(0, $inst->{pid})) {
        sleep 0.05;
    }
    die "apache2 $inst->{pid} did not stop" if kill(0, $inst->{pid});
    delete $inst->{pid};
}

# ---- numbered keys ------------------------------------------------------

# set_failures($inst, 'p', N): /set keys p1 .. pN to v1 .. vN, each on a
# fresh connection (so requests spread over the children); how many were
# not answered 200.
sub set_failures {
    my ($inst, $prefix, $n) = @_;
    my $failed = 0;
    for my $i (1 .. $n) {
        my $r = req(POST => "$inst->{url}/set", qq({"key":"$prefix$i","value":"v$i"}));
        $failed++ unless $r->code == 200;
    }
    return $failed;
}

# get_mismatches($inst, 'p', N): how many of keys p1 .. pN a /get does not
# answer 200 with value v1 .. vN (what set_failures wrote).
sub get_mismatches {
    my ($inst, $prefix, $n) = @_;
    my $bad = 0;
    for my $i (1 .. $n) {
        my $g = req(GET => "$inst->{url}/get?key=$prefix$i");
        $bad++ unless $g->code == 200 && (json_of($g) || {})->{value} eq "v$i";
    }
    return $bad;
}

# ---- configtest: is a directive refused? --------------------------------

# The first lines of a configuration that `apache2 -t` reads in dir: where
# its files go, and the event MPM.
sub conf_head {
    my ($dir) = @_;
    return <<"CONF";
ServerRoot "$dir"
PidFile "$dir/httpd.pid"
ErrorLog "$dir/error.log"
DefaultRuntimeDir "$dir"
ServerName 127.0.0.1
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
CONF
}

# configtest_directive("KVLSMSomething value") -> (wait status $?, output)
# of `apache2 -t` on a minimal configuration (event MPM, this build of the
# module, a data directory in a fresh temporary directory) that ends with
# that line.  Nothing is started: -t only reads the configuration.
sub configtest_directive {
    my ($line) = @_;
    my $dir = tempdir('kvlsm-configtest-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    open my $c, '>', "$dir/httpd.conf" or die "$dir/httpd.conf: $!";
    print $c conf_head($dir), <<"CONF";
LoadModule kvlsm_module "@{[module_path()]}"
Listen 127.0.0.1:@{[free_port()]}
KVLSMDataDir "$dir/data"
$line
CONF
    close $c;
    my $out = `@{[httpd()]} -t -f $dir/httpd.conf 2>&1`;
    return ($?, $out);
}

# ---- mod_status: who holds a worker -------------------------------------

# Configuration lines for an instance whose workers a test watches:
# mod_status at /server-status, and idle connections kept 10 s.
sub status_conf {
    my $mods = '/usr/lib/apache2/modules';
    return <<"CONF";
LoadModule status_module $mods/mod_status.so
KeepAliveTimeout 10
<Location "/server-status">
    SetHandler server-status
</Location>
CONF
}

# (busy workers, workers in keep-alive: K on the scoreboard) of an
# instance, asked on a connection of its own; (-1, 0) if it did not say.
sub scoreboard {
    my $inst = shift;
    my $s = req(GET => "$inst->{url}/server-status?auto")->content;
    my ($busy) = $s =~ /^BusyWorkers: (\d+)/m;
    my ($board) = $s =~ /^Scoreboard: (\S+)/m;
    return ($busy // -1, ($board // '') =~ tr/K//);
}

# ---- raw HTTP/1.1 over one socket ----------------------------------------
# For what LWP hides: chunked request bodies, bodies sent in parts, an
# answer that comes before the body is all sent, and the one child behind
# a kept-alive connection.  Every wait is bounded by a deadline.

sub raw_connect {
    my $port = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
                                  Timeout => 10) or die "connect 127.0.0.1:$port: $!";
    binmode $s;
    $s->blocking(0);
    return $s;
}

# The bytes of a request: with Content-Length, or (chunked => 1) in chunks
# of 64 KiB without one.
sub raw_request {
    my ($method, $path, $body, %o) = @_;
    my $head = "$method $path HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    return "$head\r\n" unless defined $body;
    return "${head}Content-Length: " . length($body) . "\r\n\r\n$body" unless $o{chunked};
    my $out = "${head}Transfer-Encoding: chunked\r\n\r\n";
    for (my $i = 0; $i < length $body; $i += 65536) {
        my $c = substr($body, $i, 65536);
        $out .= sprintf("%x\r\n", length $c) . $c . "\r\n";
    }
    return $out . "0\r\n\r\n";
}

# Write $data unless the server answers first (or the deadline passes):
# returns the number of bytes written.
sub raw_write {
    my ($s, $data, $secs) = @_;
    my $deadline = time + ($secs || 60);
    my $off = 0;
    while ($off < length $data && time < $deadline) {
        my ($r, $w) = ('', '');
        vec($r, fileno $s, 1) = 1;
        vec($w, fileno $s, 1) = 1;
        my $n = select(my $ro = $r, my $wo = $w, undef, $deadline - time);
        next if $n <= 0;
        last if vec($ro, fileno $s, 1);          # an answer (or a close) came first
        my $k = syswrite($s, $data, 1 << 16, $off);
        last if !defined $k && !$!{EAGAIN} && !$!{EWOULDBLOCK};
        $off += $k if $k;
    }
    return $off;
}

my %pending;   # bytes read past an answer, per socket

# Read one answer: { code, h => {lower-case name => value}, body }, or
# undef if none came whole before the deadline.
sub raw_read {
    my ($s, $secs) = @_;
    my $deadline = time + ($secs || 60);
    my $buf = delete $pending{fileno $s} // '';
    my ($code, %h, $need, $chunked, $hlen);
    my $eof = 0;
    while (1) {
        if (!defined $code && (my $i = index($buf, "\r\n\r\n")) >= 0) {
            my @lines = split /\r\n/, substr($buf, 0, $i);
            ($code) = (shift(@lines) // '') =~ m{^HTTP/1\.\d (\d{3})} or return undef;
            for (@lines) { $h{lc $1} = $2 if /^([^:]+):\s*(.*)$/ }
            $hlen = $i + 4;
            $need = $h{'content-length'};
            $chunked = ($h{'transfer-encoding'} // '') =~ /chunked/i;
        }
        if (defined $code) {
            my $rest = substr($buf, $hlen);
            if (defined $need && length($rest) >= $need) {
                $pending{fileno $s} = substr($rest, $need) if length($rest) > $need;
                return { code => $code, h => \%h, body => substr($rest, 0, $need) };
            }
            if ($chunked && $rest =~ /(?:^|\r\n)0\r\n\r\n/) {
                my $body = '';
                while ($rest =~ s/^([0-9a-fA-F]+)\r\n//) {
                    my $n = hex $1;
                    last unless $n;
                    $body .= substr($rest, 0, $n, '');
                    $rest =~ s/^\r\n//;
                }
                return { code => $code, h => \%h, body => $body };
            }
            return { code => $code, h => \%h, body => $rest } if $eof && !defined $need && !$chunked;
        }
        return undef if $eof || time >= $deadline;
        my $r = '';
        vec($r, fileno $s, 1) = 1;
        next unless select(my $ro = $r, undef, undef, $deadline - time) > 0;
        my $n = sysread($s, $buf, 1 << 16, length $buf);
        $eof = 1 if defined $n && $n == 0;
        $eof = 1 if !defined $n && !$!{EAGAIN} && !$!{EWOULDBLOCK};
    }
}

# A field of /proc/<pid>/status in bytes (VmHWM, VmRSS), undef if gone.
sub proc_status {
    my ($pid, $field) = @_;
    open my $fh, '<', "/proc/$pid/status" or return undef;
    while (<$fh>) {
        return $1 * 1024 if /^\Q$field\E:\s+(\d+) kB/;
    }
    return undef;
}

1;
