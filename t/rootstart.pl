#!/usr/bin/perl
# rootstart.pl -- starting as root from a directory the child user cannot
# enter (run as root; `make apache-test` does it).  `apache2 -t` with a
# KVLSMDataDir under a 0700 directory fails and names that directory;
# `make run`'s script (conf/run.sh), started from a 0700 checkout, serves
# writes and reads instead of 503, keeping its data where www-data can
# reach it, and says where.  Prints TAP.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use KVTest;

$ENV{KVLSM_TOP} = "$FindBin::Bin/..";
die "run as root (the children must run as www-data)\n" unless $> == 0;
my $top = "$FindBin::Bin/..";
my $n = 0;
my $failed = 0;
sub ok { my ($c, $m) = @_; $n++; $failed++ unless $c; print(($c ? "ok" : "not ok") . " $n - $m\n") }

# A private directory, as root's home or mktemp -d is.
my $priv = tempdir('kvlsm-private-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0700, $priv or die;

# 1. configtest names the component the child user cannot enter.
my $conf = "$priv/t.conf";
open my $c, '>', $conf or die;
print $c <<"CONF";
ServerRoot "$priv"
PidFile "$priv/httpd.pid"
ErrorLog "$priv/error.log"
DefaultRuntimeDir "$priv"
ServerName 127.0.0.1
User www-data
Group www-data
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule kvlsm_module "@{[module_path()]}"
Listen 127.0.0.1:@{[free_port()]}
KVLSMDataDir "$priv/var/data"
CONF
close $c;
my $out = `@{[httpd()]} -t -f $conf 2>&1`;
ok($? != 0, 'configtest fails when www-data cannot reach the data directory');
ok($out =~ m{KVLSMDataDir \Q$priv\E/var/data: the child user \(www-data\) cannot use it: cannot enter \Q$priv\E \(mode 0700, owner root:root\)},
   'the message names the directory, the child user and the component') or print "# $out";
chmod 0711, $priv;
$out = `@{[httpd()]} -t -f $conf 2>&1`;
ok($? == 0 && $out =~ /Syntax OK/, 'with the component searchable, configtest passes') or print "# $out";
chmod 0700, $priv;

# 2. make run's script from a private checkout.
my $tree = "$priv/checkout";
make_path("$tree/.libs");
system('cp', '-r', "$top/conf", "$tree/") == 0 or die;
system('cp', module_path(), "$tree/.libs/") == 0 or die;
my $port = free_port();
my $log = "$priv/run.out";
my $pid = fork // die;
if (!$pid) {
    open STDOUT, '>', $log or die;
    open STDERR, '>&', \*STDOUT or die;
    $ENV{PORT} = $port;
    exec 'sh', "$tree/conf/run.sh" or die;
}
my $url = "http://127.0.0.1:$port";
my $up = 0;
my $deadline = time + 30;
while (time < $deadline && waitpid($pid, WNOHANG) == 0) {
    if (IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')) { $up = 1; last }
    sleep 0.05;
}
ok($up, "conf/run.sh serves on 127.0.0.1:$port from a 0700 checkout");
my $said = do { local (@ARGV, $/) = $log; <> } // '';
my ($data) = $said =~ /data in (\S+),/;
ok($said =~ /www-data cannot enter .* so the data lives in (\S+)/, 'it says where the data lives') or print "# $said";
my $set = $up ? req(POST => "$url/set", '{"key":"private","value":"reachable"}') : undef;
ok($set && $set->code == 200, 'a write is stored (not 503)') or print '# ', ($set ? $set->status_line . ' ' . $set->content : 'no server'), "\n";
my $get = $up ? json_of(req(GET => "$url/get?key=private")) : undef;
ok($get && $get->{value} eq 'reachable', 'and read back');
ok($data && index($data, $priv) != 0 && -d $data, "the data directory ($data) is outside the private tree");
kill 'TERM', $pid;
$deadline = time + 20;
sleep 0.05 while time < $deadline && waitpid($pid, WNOHANG) == 0;
ok(!kill(0, $pid), 'Apache stopped by its PID');
remove_tree($data) if $data && $data =~ m{^/var/lib/kvlsm-run/};
rmdir '/var/lib/kvlsm-run';
print "1..$n\n";
exit($failed ? 1 : 0);
