# configtest.t -- `apache2 -t` accepts a Debian-style configuration that
# includes the shipped conf/kvlsm.load and conf/kvlsm.conf, and rejects a
# bad value naming the directive and the accepted range.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use File::Temp qw(tempdir);
use KVTest;

my @bad = (
    [ 'KVLSMSync sometimes',        qr/KVLSMSync: 'sometimes' is not valid: use always, interval or off/ ],
    [ 'KVLSMMemtableSize 1K',       qr/KVLSMMemtableSize: '1K' is not valid: give a size from 64K to 1G/ ],
    [ 'KVLSMMemtableSize lots',     qr/KVLSMMemtableSize: 'lots' is not valid/ ],
    [ 'KVLSMSyncInterval 0',        qr/KVLSMSyncInterval: '0' is not valid: give milliseconds from 1 to 3600000/ ],
    [ 'KVLSMMaxKeySize 70000',      qr/KVLSMMaxKeySize: '70000' is not valid: give a size from 1 to 65535/ ],
    [ 'KVLSMMaxValueSize 1G',       qr/KVLSMMaxValueSize: '1G' is not valid/ ],
    [ 'KVLSMDataDir',               qr/KVLSMDataDir takes one argument/ ],
    [ 'KVLSMCompression snappy',    qr/KVLSMCompression: 'snappy' is not valid: use none, lz4 or zstd/ ],
    [ 'KVLSMMapSize lots',          qr/KVLSMMapSize: 'lots' is not valid: give a size from 0 \(never map\) to 64G/ ],
    [ 'KVLSMMapSize 65G',           qr/KVLSMMapSize: '65G' is not valid/ ],
    [ 'KVLSMMaxBatchSize 512',      qr/KVLSMMaxBatchSize: '512' is not valid: give a size from 1K to 1G/ ],
    [ 'KVLSMMaxBatchSize 2G',       qr/KVLSMMaxBatchSize: '2G' is not valid/ ],
    [ 'KVLSMMaxInflight 1K',        qr/KVLSMMaxInflight: '1K' is not valid: give a size from 64K to 64G/ ],
    [ 'KVLSMMaxInflight none',      qr/KVLSMMaxInflight: 'none' is not valid/ ],
    [ 'KVLSMNextRequestWait 200ms', qr/KVLSMNextRequestWait: '200ms' is not valid: use off or a time up to 100ms/ ],
    [ 'KVLSMNextRequestWait soon',  qr/KVLSMNextRequestWait: 'soon' is not valid/ ],
    [ 'KVLSMNextRequestWait -1',    qr/KVLSMNextRequestWait: '-1' is not valid/ ],
);
plan tests => 3 + 2 * @bad + 6;

my $top = top_dir();
my $dir = tempdir('kvlsm-conftest-XXXXXX', TMPDIR => 1, CLEANUP => 1);
mkdir "$dir/mods-enabled";
# The shipped files, with the module path pointed at this build.
open my $in, '<', "$top/conf/kvlsm.load" or die $!;
open my $out, '>', "$dir/mods-enabled/kvlsm.load" or die $!;
while (<$in>) { s{/usr/lib/apache2/modules/mod_kvlsm\.so}{@{[module_path()]}}; print $out $_ }
close $out;
open $in, '<', "$top/conf/kvlsm.conf" or die $!;
open $out, '>', "$dir/mods-enabled/kvlsm.conf" or die $!;
while (<$in>) { s{^(\s*KVLSMDataDir)\s+\S+}{$1 $dir/data}; print $out $_ }
close $out;

sub configtest {
    my $extra = shift;
    open my $c, '>', "$dir/apache2.conf" or die $!;
    print $c conf_head($dir), <<"CONF";
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
IncludeOptional mods-enabled/*.load
IncludeOptional mods-enabled/*.conf
$extra
CONF
    close $c;
    my $output = `@{[httpd()]} -t -f $dir/apache2.conf 2>&1`;
    return ($? >> 8, $output);
}

# Safe by default: the shipped store is reachable from this machine only.
open $in, '<', "$top/conf/kvlsm.conf" or die $!;
my @open = grep { /^\s*(Listen|<VirtualHost)\b/i && !/(127\.0\.0\.1|\[::1\]):\d+/ } <$in>;
ok t_cmp(join('', @open), '', 'every Listen and VirtualHost of the shipped conf is on loopback');

my ($rc, $outp) = configtest('');
ok t_cmp($rc, 0, 'shipped configuration passes configtest');
ok t_cmp($outp, qr/Syntax OK/, 'Syntax OK');
for my $b (@bad) {
    my ($line, $want) = @$b;
    ($rc, $outp) = configtest($line);
    ok t_cmp($rc != 0 ? 1 : 0, 1, "'$line' fails configtest");
    ok t_cmp($outp, $want, "'$line' names the directive and range");
}

# Start-up tells the truth: a data directory the child user cannot reach
# fails configtest, naming the component at fault.
mkdir "$dir/locked";
chmod 0600, "$dir/locked";
open my $f, '>', "$dir/plainfile" or die $!;
close $f;
mkdir "$dir/readonly";
chmod 0500, "$dir/readonly";
for my $case (["$dir/locked/data", qr{\Q$dir\E/locked/data: the child user \(.*\) cannot use it: cannot enter \Q$dir\E/locked \(mode 0600}],
              ["$dir/plainfile/data", qr{\Q$dir\E/plainfile is not a directory}],
              ["$dir/readonly/data", qr{it is missing and cannot be created in \Q$dir\E/readonly \(mode 0500}]) {
    my ($path, $want) = @$case;
    ($rc, $outp) = configtest("KVLSMDataDir \"$path\"");
    ok t_cmp($rc != 0 ? 1 : 0, 1, "KVLSMDataDir $path fails configtest");
    ok t_cmp($outp, $want, 'the message names the component at fault');
}
chmod 0700, "$dir/locked", "$dir/readonly";
