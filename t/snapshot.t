# snapshot.t -- GET /snapshot, an online backup as a tar archive, through
# real Apache: taken three times while three client processes write
# through fresh connections to three children (plain sets and two-key
# batches, 64K memtables so flushes and compactions run throughout),
# each archive untarred into an empty directory, checked by kvlsm-check,
# served by an Apache of its own, and compared with what was
# acknowledged: every write a client had seen acknowledged before it sent
# the GET is there (or a later write of the same key), every value is one
# some write produced, both keys of a batch come from the same batch.
# Then the stream itself: HEAD, a client that goes away mid-stream and a
# private directory emptied mid-stream (the connection is cut: fewer
# bytes than Content-Length), a damaged store (JSON 500 before any byte),
# and that no private directory outlives its request.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use Archive::Tar;
use File::Temp qw(tempdir);
use IO::Select;
use POSIX qw(_exit);
use Socket;
use Time::HiRes qw(time sleep);
use KVTest;

plan tests => 3 * 10 + 22;

my $K = 60;             # keys per writer; j < K/2 are written as batch pairs
my $OPS = 360;          # per writer
my $WRITERS = 3;
my $check = top_dir() . '/build/kvlsm-check';
die "$check is missing: make build/kvlsm-check" unless -x $check;

sub value_of {
    my ($c, $j, $ver) = @_;
    return "c$c-j$j-v$ver-" . ('x' x (($j * 7 + $ver * 13) % 300));
}

# No private directory left in a data directory (bounded wait: the
# request's cleanup runs once the response is sent).
sub no_private_dirs {
    my ($data) = @_;
    my $deadline = time + 10;
    while (time < $deadline) {
        return 1 unless glob("$data/SNAP-*.tmp");
        sleep 0.05;
    }
    return 0;
}

sub log_has {
    my ($inst, $re) = @_;
    my $deadline = time + 10;
    while (time < $deadline) {
        open my $fh, '<', "$inst->{dir}/error.log" or return 0;
        my $log = do { local $/; <$fh> };
        return 1 if $log =~ $re;
        sleep 0.05;
    }
    return 0;
}

# ---- snapshots under concurrent writes --------------------------------
my $inst = start_apache(mpm => 'event', servers => 3);
my $data = "$inst->{dir}/data";
# Something in SSTs before the writers start (4 x 64K memtables' worth).
my $pre_failed = 0;
for my $b (0 .. 19) {
    my $ops = join ',', map { my $k = sprintf('pre%04d', $b * 50 + $_);
                               qq({"op":"set","key":"$k","value":"$k-) . ('p' x 200) . '"}' } 0 .. 49;
    $pre_failed++ unless req(POST => "$inst->{url}/batch", qq({"ops":[$ops]}))->code == 200;
}

pipe(my $rd, my $wr) or die "pipe: $!";
my @kids;
for my $c (0 .. $WRITERS - 1) {
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        close $rd;
        for my $i (0 .. $OPS - 1) {
            my ($j, $ver) = ($i % $K, int($i / $K) + 1);
            my $v = value_of($c, $j, $ver);
            # A fresh connection each time: the writes spread over the children.
            my $r = $j < $K / 2
                ? req(POST => "$inst->{url}/batch",
                      qq({"ops":[{"op":"set","key":"p$c-$j","value":"$v"},{"op":"set","key":"q$c-$j","value":"$v"}]}))
                : req(POST => "$inst->{url}/set", qq({"key":"w$c-$j","value":"$v"}));
            _exit(1) unless $r->code == 200;
            syswrite $wr, "$c $i " . ($r->header('X-KVLSM-Pid') // 0) . "\n";
        }
        _exit(0);
    }
    push @kids, $pid;
}
close $wr;

my @acked = (0) x $WRITERS;     # ops each writer has reported acknowledged
my %pids;
my $buf = '';
my $sel = IO::Select->new($rd);
my $eof = 0;
# Read what the writers reported, waiting at most $wait seconds for some.
sub drain {
    my ($wait) = @_;
    return if $eof;
    while ($sel->can_read($wait)) {
        my $n = sysread $rd, $buf, 65536, length $buf;
        if (!$n) { $eof = 1; last }
        while ($buf =~ s/^(\d+) (\d+) (\d+)\n//) {
            $acked[$1] = $2 + 1;
            $pids{$3}++;
        }
        $wait = 0;
    }
}

sub total { my $t = 0; $t += $_ for @acked; return $t }

my @snaps;
for my $s (1 .. 3) {
    # A quarter, half, three quarters of the way.
    my $goal = int($WRITERS * $OPS * $s / 4);
    my $deadline = time + 120;
    drain(1) while !$eof && time < $deadline && total() < $goal;
    drain(0);
    my @before = @acked;        # acknowledged before the GET is sent
    my $file = "$inst->{dir}/snap$s.tar";
    my $t0 = time;
    my $r = LWP::UserAgent->new(timeout => 60)->request(HTTP::Request->new(GET => "$inst->{url}/snapshot"), $file);
    push @snaps, { file => $file, before => \@before, res => $r, ms => 1000 * (time - $t0) };
}
my $during = total();
drain(5) until $eof;
close $rd;
my $writer_failed = 0;
for (@kids) {
    waitpid($_, 0);
    $writer_failed++ if $?;
}
t_debug('writes answered by children ' . join(',', sort keys %pids));

my $n = 0;
for my $sn (@snaps) {
    $n++;
    my $r = $sn->{res};
    ok t_cmp($r->code, 200, "snapshot $n: 200");
    ok t_cmp($r->header('Content-Type') // '', 'application/x-tar', "snapshot $n: application/x-tar");
    ok t_cmp(-s $sn->{file}, $r->header('Content-Length'), "snapshot $n: all of Content-Length arrived");
    t_debug(sprintf 'snapshot %d: %d bytes in %.1f ms from child %s; acknowledged before it: %s', $n,
            -s $sn->{file}, $sn->{ms}, $r->header('X-KVLSM-Pid') // '?', join('/', @{ $sn->{before} }));
    # Members: plain files, relative names the store knows, 0644.
    my @bad = grep { $_->name !~ /^(MANIFEST|\d{6}\.(sst|log))$/ || $_->mode != 0644 || !$_->is_file }
              Archive::Tar->new($sn->{file})->get_files;
    ok t_cmp(scalar(@bad), 0, "snapshot $n: members are MANIFEST, NNNNNN.sst, NNNNNN.log, mode 0644");
    my $d = tempdir('kvlsm-restore-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    mkdir "$d/data" or die "$d/data: $!";
    ok t_cmp(system('tar', '-xf', $sn->{file}, '-C', "$d/data"), 0, "snapshot $n: tar -x into an empty directory");
    ok t_cmp(system("$check $d/data > $d/check.out 2>&1"), 0,
             "snapshot $n: kvlsm-check passes on it: " . `cat $d/check.out`);
    # Served by an Apache of its own.
    my $ri = start_apache(mpm => 'event', servers => 2, dir => $d);
    my (%got, $cursor);
    my $pages = 0;
    do {
        my $sr = req(GET => "$ri->{url}/scan?limit=1000" . (defined $cursor ? "&cursor=$cursor" : ''));
        die 'scan failed: ' . $sr->code unless $sr->code == 200;
        my $j = json_of($sr);
        $got{ $_->{key} } = $_->{value} for @{ $j->{items} };
        $cursor = $j->{next};
    } while (defined $cursor && ++$pages < 1000);
    my $g = req(GET => "$ri->{url}/get?key=pre0000");
    stop_apache($ri);
    ok t_cmp($g->code, 200, "snapshot $n: the restored store answers /get");
    my ($lost, $wrong, $torn, $extra) = (0, 0, 0, 0);
    my %model;
    for my $i (0 .. 999) {
        my $k = sprintf 'pre%04d', $i;
        $model{$k} = 1;
        $lost++ unless defined $got{$k} && $got{$k} eq "$k-" . ('p' x 200);
    }
    for my $c (0 .. $WRITERS - 1) {
        for my $j (0 .. $K - 1) {
            my @keys = $j < $K / 2 ? ("p$c-$j", "q$c-$j") : ("w$c-$j");
            $model{$_} = 1 for @keys;
            # The last op on key j acknowledged before the GET, if any.
            my $before = $sn->{before}[$c];
            my $min_ver = $before > $j ? int(($before - 1 - $j) / $K) + 1 : 0;
            my $v = $got{ $keys[0] };
            if (!defined $v) {
                $lost++ if $min_ver;
            }
            elsif ($v =~ /^c$c-j$j-v(\d+)-/ && $v eq value_of($c, $j, $1)
                   && ($1 - 1) * $K + $j < $OPS) {
                $lost++ if $1 < $min_ver;
            }
            else { $wrong++ }
            $torn++ if @keys == 2 && ($got{ $keys[1] } // '') ne ($v // '');
        }
    }
    $extra = grep { !$model{$_} } keys %got;
    ok t_cmp($lost, 0, "snapshot $n: every write acknowledged before the GET is there (or a later one)");
    ok t_cmp($wrong + $extra, 0, "snapshot $n: every value is one some write produced, nothing else");
    ok t_cmp($torn, 0, "snapshot $n: both keys of every batch from the same batch");
}
ok t_cmp($pre_failed, 0, 'preload acknowledged');
ok t_cmp($writer_failed, 0, "every write acknowledged ($during of " . $WRITERS * $OPS . ' when the last snapshot was taken)');
ok t_cmp(scalar(keys %pids) >= 2 ? 1 : 0, 1, 'writes answered by several children (' . join(',', sort keys %pids) . ')');
ok t_cmp(no_private_dirs($data), 1, 'no snapshot directory outlives its request');
stop_apache($inst);
ok t_cmp(system("$check $data > /dev/null"), 0, 'kvlsm-check passes on the live store after it all');

# ---- the stream: HEAD, a client that goes away, a cut --------------------
# Small socket buffers on both sides, so the server blocks with most of
# the archive unsent.
$inst = start_apache(mpm => 'event', servers => 2, extra => "SendBufferSize 16384\n");
$data = "$inst->{dir}/data";
for my $b (0 .. 39) {
    my $ops = join ',', map { my $k = sprintf('big%05d', $b * 100 + $_);
                               qq({"op":"set","key":"$k","value":"$k-) . ('y' x 1000) . '"}' } 0 .. 99;
    req(POST => "$inst->{url}/batch", qq({"ops":[$ops]}));
}
my $h = req(HEAD => "$inst->{url}/snapshot");
ok t_cmp($h->code . ' ' . ($h->header('Content-Type') // ''), '200 application/x-tar', 'HEAD: 200, a tar');
ok t_cmp(($h->header('Content-Length') // 0) > 4_000_000 ? 1 : 0, 1,
         'HEAD: Content-Length of the archive (' . ($h->header('Content-Length') // '?') . ')');
ok t_cmp(length($h->content), 0, 'HEAD: no body');

# Send the GET on a socket with a small receive buffer; read the headers
# and a little of the body.  Returns (socket, Content-Length, bytes read).
sub start_stream {
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 8192) or die "setsockopt: $!";
    connect($s, sockaddr_in($inst->{port}, inet_aton('127.0.0.1'))) or die "connect: $!";
    syswrite $s, "GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    my ($got, $head) = ('', undef);
    my $sel = IO::Select->new($s);
    my $deadline = time + 20;
    while (time < $deadline && length($got) < 65536 && $sel->can_read(5)) {
        last unless sysread $s, $got, 16384, length $got;
        $head //= $1 if $got =~ /^(.*?\r\n\r\n)/s;
    }
    my ($len) = ($head // '') =~ /Content-Length: (\d+)/i;
    return ($s, $len // 0, length($got) - length($head // ''));
}

my ($s, $len, $read) = start_stream();
ok t_cmp(scalar(() = glob("$data/SNAP-*.tmp")), 1, 'the private directory lives while the archive streams');
close $s;
ok t_cmp(no_private_dirs($data), 1, 'a client gone mid-stream: the private directory is removed');
ok t_cmp(log_has($inst, qr/AH10951/), 1, 'and the child logs that the client went away');

# The private directory emptied under the stream: the next file cannot be
# opened, the connection is cut.
($s, $len, $read) = start_stream();
my ($priv) = glob("$data/SNAP-*.tmp");
unlink glob("$priv/*") if $priv;
my $sel2 = IO::Select->new($s);
my $deadline = time + 30;
my $chunk;
while (time < $deadline && $sel2->can_read(5)) {
    my $m = sysread $s, $chunk, 65536;
    last unless $m;
    $read += $m;
}
close $s;
ok t_cmp(($len > 0 && $read < $len) ? 1 : 0, 1, "a failure mid-stream cuts the connection ($read of $len bytes)");
ok t_cmp(log_has($inst, qr/AH10952/), 1, 'and is logged');
ok t_cmp(no_private_dirs($data), 1, 'the private directory of a cut stream is removed');
my $after = req(GET => "$inst->{url}/snapshot");
ok t_cmp($after->code, 200, 'the next snapshot is whole again');
ok t_cmp(length($after->content), $after->header('Content-Length'), 'all of it');
stop_apache($inst);

# ---- access control, and errors before the first byte ----------------------
# As README.md says to protect it: a section of the endpoint's own inside
# the mount, with its own Require.
$inst = start_apache(mpm => 'event', servers => 1, extra => <<'CONF');
LoadModule authz_host_module /usr/lib/apache2/modules/mod_authz_host.so
<Location "/snapshot">
    Require ip 127.0.0.1
</Location>
<Location "/ro">
    SetHandler kvlsm
</Location>
<Location "/ro/snapshot">
    Require all denied
</Location>
CONF
$data = "$inst->{dir}/data";
my $a1 = req(GET => "$inst->{url}/snapshot");
ok t_cmp($a1->code . ' ' . ($a1->header('Content-Type') // ''), '200 application/x-tar',
         '<Location /snapshot> with Require ip 127.0.0.1: served from loopback');
my $a2 = req(GET => "$inst->{url}/ro/snapshot");
ok t_cmp($a2->code . ' ' . ((json_of($a2) || {})->{error} // ''), '403 forbidden',
         '<Location /ro/snapshot> with Require all denied: 403, JSON');
ok t_cmp(req(GET => "$inst->{url}/ro/get?key=none")->code, 404, 'the rest of that mount still answers');
my $p = req(POST => "$inst->{url}/snapshot", '');
ok t_cmp($p->code . ' ' . ($p->header('Allow') // ''), '405 GET, HEAD', 'POST /snapshot: 405, Allow: GET, HEAD');
# One flush (over 64K written), then nothing: one SST, no compaction.
for my $i (0 .. 79) {
    req(POST => "$inst->{url}/set", qq({"key":"d$i","value":") . ('z' x 1000) . '"}');
}
my $deadline2 = time + 20;
sleep 0.05 while time < $deadline2 && !-e "$data/000001.sst";
unlink "$data/000001.sst";
my $e = req(GET => "$inst->{url}/snapshot");
ok t_cmp($e->code . ' ' . ((json_of($e) || {})->{error} // ''), '500 store data is damaged',
         'a listed SST missing: 500 with a JSON error, no archive');
ok t_cmp(no_private_dirs($data), 1, 'and no private directory left');
stop_apache($inst);
