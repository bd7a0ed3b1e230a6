# upgrade.t -- a graceful restart between the module as released before
# the store-wide counters (build/released/mod_kvlsm.so: SHM version 2, no
# STATS file; made from git by make apache-test) and this build, in both
# directions, with children of both serving the store side by side: a
# write held open in a child of the old generation (its headers read, its
# body not yet sent: the child answered "100 Continue") completes after
# children of the new generation have read and written the same store,
# and every child sees every write.  The new build's /metrics counts what
# its own children do; the old one has no /metrics (404).
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);
use KVTest;

my $released = KVTest::top_dir() . '/build/released/mod_kvlsm.so';
plan tests => 16, need { 'the released module (make apache-test builds it from git)' => -f $released };

my $current = module_path();

# A set whose headers are sent and whose body is not: returns the socket
# once the child handling it asked for the body (100 Continue), so the
# request is in that child's handler, not in the listen queue.
sub hold_set {
    my ($inst, $key, $value) = @_;
    my $body = qq({"key":"$key","value":"$value"});
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $inst->{port}, Proto => 'tcp',
                                  Timeout => 10) or die "connect: $!";
    print $s "POST /set HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           . "Content-Length: " . length($body) . "\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n";
    my $got = read_until($s, qr/\r\n\r\n/, 10);
    die "no 100 Continue: '$got'" unless $got =~ m{^HTTP/1\.1 100 };
    return { sock => $s, body => $body };
}

# Send the held set's body; its status and the answering child's pid.
sub finish_set {
    my ($h) = @_;
    my $s = $h->{sock};
    print $s $h->{body};
    my $got = read_until($s, qr/\r\n\r\n.*\n/s, 20);
    close $s;
    my ($status) = $got =~ m{^HTTP/1\.1 (\d+)};
    my ($pid) = $got =~ m{^X-KVLSM-Pid: (\d+)}mi;
    return ($status // 0, $pid // 0);
}

sub read_until {
    my ($s, $re, $secs) = @_;
    my $sel = IO::Select->new($s);
    my ($buf, $deadline) = ('', time + $secs);
    while ($buf !~ $re && time < $deadline) {
        last unless $sel->can_read($deadline - time);
        my $n = sysread $s, $buf, 4096, length $buf;
        last unless $n;
    }
    return $buf;
}

sub switch_module {
    my ($inst, $to) = @_;
    open my $in, '<', $inst->{conf} or die $!;
    my $conf = do { local $/; <$in> };
    close $in;
    $conf =~ s/^LoadModule kvlsm_module .*$/LoadModule kvlsm_module "$to"/m or die 'no LoadModule line';
    open my $out, '>', $inst->{conf} or die $!;
    print $out $conf;
    close $out;
    system(httpd(), '-f', $inst->{conf}, '-k', 'graceful') == 0 or die 'graceful failed';
}

sub set_keys {
    my ($inst, $prefix, $n) = @_;
    my $bad = 0;
    for my $i (1 .. $n) {
        my $r = req(POST => "$inst->{url}/set", qq({"key":"$prefix$i","value":"$prefix-value-$i"}));
        $bad++ unless $r->code == 200;
    }
    return $bad;
}

sub missing_keys {
    my ($inst, $prefix, $n) = @_;
    my $bad = 0;
    for my $i (1 .. $n) {
        my $j = json_of(req(GET => "$inst->{url}/get?key=$prefix$i"));
        $bad++ unless $j && defined $j->{value} && $j->{value} eq "$prefix-value-$i";
    }
    return $bad;
}

# One direction: start on $from, hold a write in one of its children,
# restart gracefully into $to, use the store through $to's children, then
# let the held write finish in the $from child.
sub upgrade {
    my ($from, $to, $label, $to_has_metrics) = @_;
    my $inst = start_apache(mpm => 'event', servers => 2, module => $from);
    ok t_cmp(set_keys($inst, 'a', 30), 0, "$label: the first generation writes");
    my $held = hold_set($inst, 'held', 'held-value');
    switch_module($inst, $to);
    # The new generation is serving once it answers as its module does.
    my $want = $to_has_metrics ? 200 : 404;
    my $deadline = time + 20;
    my $code = 0;
    while (time < $deadline && ($code = req(GET => "$inst->{url}/metrics")->code) != $want) {
        select(undef, undef, undef, 0.05);
    }
    ok t_cmp($code, $want, "$label: the second generation answers /metrics with $want");
    ok t_cmp(missing_keys($inst, 'a', 30), 0, "$label: it reads what the first wrote");
    ok t_cmp(set_keys($inst, 'b', 30), 0, "$label: and writes, the first generation's child still in its request");
    my ($status, $pid) = finish_set($held);
    ok t_cmp($status, 200, "$label: the held write completes in the first generation's child ($pid)");
    my $j = json_of(req(GET => "$inst->{url}/get?key=held"));
    ok t_cmp($j && $j->{value}, 'held-value', "$label: and the second generation reads it");
    ok t_cmp(missing_keys($inst, 'b', 30), 0, "$label: nothing written by the second generation was lost");
    return $inst;
}

my $inst = upgrade($released, $current, 'released -> this build', 1);
my $m = req(GET => "$inst->{url}/metrics")->content;
my ($sets) = $m =~ /^kvlsm_sets_total (\d+)$/m;
ok t_cmp($sets, 30, "this build's children counted their 30 sets (the released one's are not in STATS)");
stop_apache($inst);

$inst = upgrade($current, $released, 'this build -> released', 0);
stop_apache($inst);

# Back again: this build's counters went on while the released children
# ran beside them (the released module ignores STATS).
$inst = start_apache(mpm => 'event', servers => 2, module => $current, dir => $inst->{dir}, port => $inst->{port});
$m = req(GET => "$inst->{url}/metrics")->content;
($sets) = $m =~ /^kvlsm_sets_total (\d+)$/m;
ok t_cmp($sets, 31, "this build's counts (30 sets and the held one) kept through the released module's turn");
stop_apache($inst);
