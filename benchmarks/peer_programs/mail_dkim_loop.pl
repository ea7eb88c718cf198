#!/usr/bin/perl
# Timing loop over Mail::DKIM for the fastdkim benchmarks (benchmarks/run.py).
#
# Usage:
#   perl mail_dkim_loop.pl OP ALG CANON DOMAIN SELECTOR KEYFILE TXTFILE MSGFILE OUTFILE
#                          HEADERS OVERSIGN MIN_TIME ROUNDS MAX_TIME
#
# The arguments and the protocol (one operation, "ready SECONDS", wait for
# "go", calibrate, "round N SECONDS" lines, "done") are those described at the
# top of opendkim_loop.c.  Exit status 4 with a message on standard error means
# the installed Mail::DKIM cannot do what was asked (e.g. ed25519-sha256).
#
# No DNS: Mail::DKIM::DNS::query is replaced by a function that answers the
# key record's name with the record read from TXTFILE and nothing else.
use strict;
use warnings;
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);
use POSIX qw(ceil);
use Mail::DKIM 0.40;
use Mail::DKIM::Signer;
use Mail::DKIM::Verifier;
use Mail::DKIM::PrivateKey;
use Net::DNS;

@ARGV == 14 or die "usage: $0 OP ALG CANON DOMAIN SELECTOR KEYFILE TXTFILE MSGFILE OUTFILE "
  . "HEADERS OVERSIGN MIN_TIME ROUNDS MAX_TIME\n";
my ( $op, $alg, $canon, $domain, $selector, $keyfile, $txtfile, $msgfile, $outfile,
    $headers, $oversign, $min_time, $rounds, $max_time ) = @ARGV;

sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "$path: $!\n";
    local $/;
    my $data = <$fh>;
    close $fh;
    return $data;
}

sub now { return clock_gettime(CLOCK_MONOTONIC) }

if ( $alg ne 'rsa-sha256' ) {
    my $module = 'Mail::DKIM::Algorithm::' . ( $alg =~ tr/-/_/r );
    unless ( eval "require $module; 1" ) {
        print STDERR "Mail::DKIM $Mail::DKIM::VERSION has no $alg (no $module)\n";
        exit 4;
    }
}

my $message = slurp($msgfile);
my $sign    = $op eq 'sign';
my ( $key, %extended );
if ($sign) {
    $key = Mail::DKIM::PrivateKey->load( File => $keyfile );
    for my $h ( split /,/, $headers ) { $extended{$h} = '*' if $h ne '-' }
    for my $h ( split /,/, $oversign ) { $extended{$h} = '+' if $h ne '-' }
}
else {
    my $record = slurp($txtfile);
    $record =~ s/[\r\n]+\z//;
    my $want = lc "$selector._domainkey.$domain";
    my @strings = unpack '(A255)*', $record;
    my $rr = Net::DNS::RR->new( name => $want, type => 'TXT', txtdata => \@strings );
    no warnings 'redefine';
    *Mail::DKIM::DNS::query = sub {
        my ( $name, $type ) = @_;
        $name =~ s/\.\z//;
        if ( lc $name eq $want && uc $type eq 'TXT' ) {
            $@ = 'NOERROR';
            return ($rr);
        }
        $@ = 'NXDOMAIN';
        return;
    };
}

my $out;

sub one {
    if ($sign) {
        my $signer = Mail::DKIM::Signer->new(
            Algorithm => $alg,
            Method    => $canon,
            Domain    => $domain,
            Selector  => $selector,
            Key       => $key,
        );
        $signer->extended_headers( {%extended} ) if %extended;
        $signer->PRINT($message);
        $signer->CLOSE;
        my $sig = $signer->signature or die "no signature produced\n";
        if ($out) {
            my $field = $sig->as_string;
            $field =~ s/\r?\n/\r\n/g;
            print {$out} $field, "\r\n";
        }
    }
    else {
        my $verifier = Mail::DKIM::Verifier->new();
        $verifier->PRINT($message);
        $verifier->CLOSE;
        my $result = $verifier->result;
        if ( $result ne 'pass' ) {
            print STDERR "verification did not pass: $result (", ( $verifier->result_detail // '' ), ")\n";
            exit 3;
        }
        print {$out} "pass\n" if $out;
    }
}

sub batch {
    my ($n) = @_;
    my $t0 = now();
    one() for 1 .. $n;
    return now() - $t0;
}

open $out, '>:raw', $outfile or die "$outfile: $!\n";
my $t0    = now();
one();
my $first = now() - $t0;
close $out;
undef $out;
$| = 1;
printf "ready %.9f\n", $first;
my $line = <STDIN>;
exit 0 unless defined $line && $line =~ /^go/;

my ( $n, $t ) = ( 1, $first );
if ( $first < $min_time ) {
    while (1) {
        $t = batch($n);
        last if $t >= $min_time / 4 || $n >= 2**30;
        $n *= 2;
    }
    $n = ceil( $n * $min_time / ( $t > 0 ? $t : 1e-9 ) );
    $n = 1 if $n < 1;
    $t = $min_time;
}
if ( $rounds > 1 && $t * $rounds > $max_time ) {
    $rounds = int( $max_time / ( $t > 0 ? $t : 1e-9 ) );
    $rounds = 1 if $rounds < 1;
}
for ( 1 .. $rounds ) {
    my $dt = batch($n);
    printf "round %d %.9f\n", $n, $dt;
}
print "done\n";
exit 0;
