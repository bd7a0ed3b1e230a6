#!/usr/bin/perl
# diskfull.pl -- the store on a full disk (run as root; `make test` does it
# inside `unshare -m`): a 6 MiB tmpfs mounted in a private mount namespace
# holds the data directory and a filler file.  Writes past the space get
# 507 with a JSON error, nothing already stored is lost, reads keep
# working, and once the filler is removed writes work again without a
# restart.  Prints TAP.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use KVTest;

$ENV{KVLSM_TOP} = "$FindBin::Bin/..";
die "run as root (mounts a tmpfs)\n" unless $> == 0;
my $dir = tempdir('kvlsm-diskfull-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;
mkdir "$dir/data";
system('mount', '--make-rprivate', '/') == 0 or die "mount --make-rprivate failed";
system('mount', '-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', "$dir/data") == 0 or die "mount tmpfs failed";
system('dd', 'if=/dev/zero', "of=$dir/data/filler", 'bs=1M', 'count=3', 'status=none') == 0 or die;
system('chown', '-R', 'www-data:www-data', "$dir/data") == 0 or die;

my $n = 0;
my $failed = 0;
sub ok { my ($c, $m) = @_; $n++; $failed++ unless $c; print(($c ? "ok" : "not ok") . " $n - $m\n") }

my $inst = start_apache(mpm => 'event', servers => 2, dir => $dir,
                        extra => "User www-data\nGroup www-data\nKVLSMMaxValueSize 64K\n");
my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 30);
my $val = 'v' x 30000;
my (%stored, $full, $other);
for my $i (1 .. 2000) {
    my $r = req(POST => "$inst->{url}/set", qq({"key":"k$i","value":"$val$i"}), ua => $ua);
    if ($r->code == 200) { $stored{"k$i"} = "$val$i"; next }
    if ($r->code == 507) { $full = $r; last }
    $other = $r->code . ' ' . $r->content;
    last;
}
ok($full, 'writes past the space get 507' . ($other ? " (got $other)" : ''));
ok($full && (json_of($full) || {})->{error} =~ /no space/, '507 explains itself in JSON');
ok(scalar(keys %stored) > 10, scalar(keys %stored) . ' writes stored before the disk filled');
my $lost = 0;
for my $k (keys %stored) {
    my $j = json_of(req(GET => "$inst->{url}/get?key=$k", undef, ua => $ua));
    $lost++ unless $j && $j->{value} eq $stored{$k};
}
ok($lost == 0, "reads work on a full disk, nothing lost ($lost of " . scalar(keys %stored) . " missing)");
# The store may free space by itself meanwhile (a flushed log goes), so
# take whatever is left before asking again.
system("dd if=/dev/zero of=$dir/data/filler2 bs=64k status=none 2>/dev/null");
my $again = req(POST => "$inst->{url}/set", qq({"key":"still","value":"$val"}), ua => $ua);
ok($again->code == 507, 'still 507 while full');

unlink "$dir/data/filler", "$dir/data/filler2";
my $after = 0;
for my $i (1 .. 20) {
    my $r = req(POST => "$inst->{url}/set", qq({"key":"after$i","value":"small$i"}), ua => $ua);
    $after++ if $r->code == 200;
}
ok($after == 20, "after space is freed, writes work again without a restart ($after of 20)");
$lost = 0;
for my $k (keys %stored) {
    my $j = json_of(req(GET => "$inst->{url}/get?key=$k", undef, ua => $ua));
    $lost++ unless $j && $j->{value} eq $stored{$k};
}
ok($lost == 0, 'everything stored before is still there');
stop_apache($inst);
system('umount', "$dir/data");
print "1..$n\n";
printf "diskfull: %d passed, %d failed\n", $n - $failed, $failed;
exit($failed ? 1 : 0);
