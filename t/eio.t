# eio.t -- an I/O error on a read is a 500 with a logged error, never
# wrong data, and reads work again once the disk does.  Runs the module
# built with the engine's fault layer (build/fault/mod_kvlsm.so, made by
# make apache-test): while a file named FAULT-EIO exists in the data
# directory, every read of an SST fails with EIO.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use KVTest;
use Time::HiRes qw(time sleep);

my $fault_mod = KVTest::top_dir() . '/build/fault/mod_kvlsm.so';
plan tests => 11, need { 'the fault build of the module (make apache-test builds it)' => -f $fault_mod };

my $inst = start_apache(mpm => 'event', servers => 2, module => $fault_mod);
my $data = "$inst->{dir}/data";
my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 30);

# 1.2 MB through a 64 KiB memtable: the first log is flushed to SSTs and
# removed; wait (bounded) for that before touching the early keys.
my $pad = 'x' x 1000;
my $failed = 0;
for my $i (1 .. 1200) {
    my $r = req(POST => "$inst->{url}/set", qq({"key":"eio$i","value":"v$i-$pad"}), ua => $ua);
    $failed++ unless $r->code == 200;
}
ok t_cmp($failed, 0, 'all writes acknowledged');
my $deadline = time + 60;
sleep 0.05 while -e "$data/000001.log" && time < $deadline;
ok t_cmp(-e "$data/000001.log" ? 'still there' : 'gone', 'gone', 'the first log was flushed into SSTs');

my $before = req(GET => "$inst->{url}/get?key=eio1", undef, ua => $ua);
ok t_cmp($before->code, 200, 'read from an SST before the fault');

open my $flag, '>', "$data/FAULT-EIO" or die "$data/FAULT-EIO: $!";
close $flag;
# A child that has fallen behind may still hold a key in a memtable and
# answer it; any other answer must be the 500.
my ($errors, $wrong) = (0, 0);
for my $i (1 .. 50, 1200) {
    my $r = req(GET => "$inst->{url}/get?key=eio$i", undef, ua => $ua);
    my $j = json_of($r);
    if ($r->code == 500) {
        $errors++;
        $wrong++ unless $j && defined $j->{error} && $j->{error} eq 'internal store error';
    }
    elsif ($r->code != 200 || $j->{value} ne "v$i-$pad") {
        $wrong++;
        t_debug('wrong answer: ' . $r->code . ' ' . $r->content);
    }
}
ok t_cmp($errors >= 40, 1, "reads that need an SST fail with 500 while reads fail ($errors of 51)");
ok t_cmp($wrong, 0, 'never a wrong value, a "not found" or a bare error page');
my $sc = req(GET => "$inst->{url}/scan?prefix=eio&limit=10", undef, ua => $ua);
ok t_cmp($sc->code . ' ' . ((json_of($sc) || {})->{error} // ''), qr/^500 (internal store error|store data is damaged)/,
         'a scan that needs an SST fails with a JSON 500, nothing partial');
my $w = req(POST => "$inst->{url}/set", q({"key":"during","value":"eio"}), ua => $ua);
ok t_cmp($w->code, 200, 'writes go on (they read no SST)');

unlink "$data/FAULT-EIO" or die "unlink: $!";
my ($back, $bad) = (0, 0);
for my $i (1 .. 50) {
    my $r = req(GET => "$inst->{url}/get?key=eio$i", undef, ua => $ua);
    $back++ if $r->code == 200;
    my $j = json_of($r);
    $bad++ unless $r->code == 200 && $j->{value} eq "v$i-$pad";
}
ok t_cmp($bad, 0, 'every read answers right again once the disk does, without a restart');
my $d = req(GET => "$inst->{url}/get?key=during");
ok t_cmp((json_of($d) || {})->{value}, 'eio', 'the write made during the fault is there')
    or t_debug($d->code . ' ' . $d->content);

stop_apache($inst);
open my $log, '<', "$inst->{dir}/error.log" or die;
my @all = <$log>;
my @lines = grep { /kvlsm: get failed: Input\/output error/ } @all;
t_debug($_) for grep { /kvlsm|AH0/ && !/get failed: Input/ } @all;
ok t_cmp(scalar(@lines), $errors, 'each failed read is in the error log');
ok t_cmp(scalar(grep { /AH10908/ } @lines), scalar(@lines), 'with the module\'s message number');
