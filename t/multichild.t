# multichild.t -- several Apache children share one store: a write
# acknowledged through one connection is read at once through fresh
# connections served by other children (event with StartServers 3, and
# prefork), deletes hand each value out once, and two virtual hosts keep
# separate stores.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use KVTest;

plan tests => 13;

sub exercise {
    my ($inst, $label) = @_;
    my %pids;
    my ($lost, $errors) = (0, 0);
    my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 30);
    for my $i (1 .. 300) {
        # Write through a kept-alive connection...
        my $w = req(POST => "$inst->{url}/set", qq({"key":"mc$i","value":"v$i"}), ua => $ua);
        $errors++ unless $w->code == 200;
        $pids{ $w->header('X-KVLSM-Pid') // 'none' }++;
        # ...and read it at once through a fresh one.
        my $r = req(GET => "$inst->{url}/get?key=mc$i");
        $pids{ $r->header('X-KVLSM-Pid') // 'none' }++;
        my $j = json_of($r);
        $lost++ unless $r->code == 200 && $j && $j->{value} eq "v$i";
    }
    ok t_cmp($errors, 0, "$label: every write acknowledged");
    ok t_cmp($lost, 0, "$label: every acknowledged write read at once elsewhere");
    ok t_cmp(scalar(grep { $_ ne 'none' } keys %pids) >= 2, 1,
             "$label: answered by several children (" . join(',', sort keys %pids) . ")");
    # Deleting the same keys through two connections: one value each.
    my $ua2 = LWP::UserAgent->new(keep_alive => 1, timeout => 30);
    my $wins = 0;
    for my $i (1 .. 100) {
        for my $u ($ua, $ua2, undef) {
            my $d = req(DELETE => "$inst->{url}/del?key=mc$i", undef, $u ? (ua => $u) : ());
            $wins++ if $d->code == 200;
        }
    }
    ok t_cmp($wins, 100, "$label: each deleted value handed out exactly once");
}

# Event MPM, three children.
my $ev = start_apache(mpm => 'event', servers => 3);
exercise($ev, 'event');
stop_apache($ev);

# Prefork, four single-threaded children.
my $pf = start_apache(mpm => 'prefork', servers => 4);
exercise($pf, 'prefork');
stop_apache($pf);

# Two virtual hosts, two stores.
my $port2 = KVTest::free_port();
my $vh = start_apache(mpm => 'event', servers => 2, extra => <<"CONF");
Listen 127.0.0.1:$port2
<VirtualHost 127.0.0.1:$port2>
    KVLSMDataDir "\@DIR\@/data2"
</VirtualHost>
CONF
my $url2 = "http://127.0.0.1:$port2";
ok t_cmp(req(POST => "$vh->{url}/set", '{"key":"vh","value":"main"}')->code, 200, 'main host set');
ok t_cmp(req(POST => "$url2/set", '{"key":"vh","value":"second"}')->code, 200, 'second host set');
ok t_cmp(json_of(req(GET => "$vh->{url}/get?key=vh"))->{value}, 'main', 'main host keeps its value');
ok t_cmp(json_of(req(GET => "$url2/get?key=vh"))->{value}, 'second', 'second host keeps its own');
ok t_cmp(-e "$vh->{dir}/data2/MANIFEST" ? 1 : 0, 1, 'second store has its own directory');
stop_apache($vh);
