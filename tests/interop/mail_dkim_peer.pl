#!/usr/bin/perl
# Drives Mail::DKIM for the interop tests.
#
# Usage: mail_dkim_peer.pl [--dns 127.0.0.1:PORT] [--timeout SECONDS] [--oversign a,b,...]
#
# Reads jobs from standard input, one per line, fields separated by TABs, and
# answers each with exactly one line on standard output:
#
#   caps
#       -> the signing algorithms this Mail::DKIM can use, space-separated
#   sign ALG HCANON BCANON KEYFILE DOMAIN SELECTOR INFILE OUTFILE
#       -> "ok" (OUTFILE holds the DKIM-Signature field, CRLF-terminated,
#          followed by the unchanged message) or "error<TAB>why"
#   verify INFILE
#       -> "RESULT<TAB>detail" for the first signature: pass, fail,
#          permerror (Mail::DKIM says "invalid"), temperror, or none
#
# Keys are looked up in DNS through a Net::DNS resolver that asks only the
# server given by --dns (nothing is sent to the system's resolvers).
use strict;
use warnings;

use Getopt::Long;
use Mail::DKIM::DNS;
use Mail::DKIM::Signer;
use Mail::DKIM::Verifier;
use Net::DNS;

my $dns;
my $timeout  = 2;
my $oversign = '';
GetOptions(
    'dns=s'      => \$dns,
    'timeout=i'  => \$timeout,
    'oversign=s' => \$oversign,
) or die "usage: $0 [--dns IP:PORT] [--timeout S] [--oversign a,b]\n";

my ( $ns_host, $ns_port ) = defined $dns ? split( /:/, $dns, 2 ) : ( '127.0.0.1', 9 );
# Without --dns, point at the discard port on the loopback: lookups fail, and
# no query ever leaves this machine.
my $resolver = Net::DNS::Resolver->new(
    nameservers => [$ns_host],
    port        => $ns_port || 53,
    recurse     => 1,
    retry       => 1,
    retrans     => 1,
    udp_timeout => $timeout,
    tcp_timeout => $timeout,
    searchlist  => [],
    defnames    => 0,
    dnsrch      => 0,
);
$resolver->udppacketsize(1232);
Mail::DKIM::DNS::resolver($resolver);
$Mail::DKIM::DNS::TIMEOUT = $timeout + 1;

my %oversigned = map { lc($_) => '+' } grep { length } split /,/, $oversign;

my @algorithms = ('rsa-sha256');
push @algorithms, 'ed25519-sha256'
  if eval { require Mail::DKIM::Algorithm::ed25519_sha256; 1 };

sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "cannot read $path: $!\n";
    local $/;
    my $data = <$fh>;
    close $fh;
    return $data;
}

sub feed {
    my ( $dkim, $data ) = @_;
    my $step = 1 << 20;
    for ( my $i = 0 ; $i < length $data ; $i += $step ) {
        $dkim->PRINT( substr( $data, $i, $step ) );
    }
    $dkim->CLOSE;
}

sub sign_job {
    my ( $alg, $hc, $bc, $keyfile, $domain, $selector, $in, $out ) = @_;
    my $message = slurp($in);
    my $dkim    = Mail::DKIM::Signer->new(
        Algorithm => $alg,
        Method    => "$hc/$bc",
        Domain    => $domain,
        Selector  => $selector,
        KeyFile   => $keyfile,
        Timestamp => time(),
    );
    $dkim->extended_headers( {%oversigned} ) if %oversigned;
    feed( $dkim, $message );
    my $field = $dkim->signature->as_string;
    $field =~ s/\r?\n/\r\n/g;
    open my $fh, '>:raw', $out or die "cannot write $out: $!\n";
    print {$fh} $field, "\r\n", $message;
    close $fh or die "cannot write $out: $!\n";
    return "ok";
}

my %status = (
    pass      => 'pass',
    fail      => 'fail',
    invalid   => 'permerror',
    temperror => 'temperror',
    none      => 'none',
);

sub verify_job {
    my ($in)    = @_;
    my $message = slurp($in);
    my $dkim    = Mail::DKIM::Verifier->new();
    feed( $dkim, $message );
    my @sigs = $dkim->signatures;
    return "none\tno signature" unless @sigs;
    my $sig    = $sigs[0];
    my $result = $sig->result // 'none';
    my $detail = $sig->result_detail // $result;
    $detail =~ s/[\t\r\n]+/ /g;
    return ( $status{$result} // $result ) . "\t" . $detail;
}

$| = 1;
while ( my $line = <STDIN> ) {
    $line =~ s/\r?\n\z//;
    next unless length $line;
    my ( $job, @args ) = split /\t/, $line;
    my $answer = eval {
        if    ( $job eq 'caps' )   { join( ' ', @algorithms ) }
        elsif ( $job eq 'sign' )   { @args == 8 or die "sign needs 8 arguments\n"; sign_job(@args) }
        elsif ( $job eq 'verify' ) { @args == 1 or die "verify needs 1 argument\n"; verify_job(@args) }
        else                       { die "unknown job $job\n" }
    };
    if ( !defined $answer ) {
        my $why = $@ || 'unknown error';
        $why =~ s/[\t\r\n]+/ /g;
        $answer = "error\t$why";
    }
    print $answer, "\n";
}
