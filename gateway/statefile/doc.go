// Package statefile is portleased's durable lease state: a log of lease
// records that the lease core's group commit appends to, one write(2) and
// one fsync per batch, and that Open replays after a restart or a crash
// (issue 9, "Durable leases"). It keeps what RFC 6886 §3.6 and RFC 6887
// §8.5 need to continue the epoch across a restart, and the UPnP
// BOOTID.UPNP.ORG that must grow across restarts on a router without a
// real-time clock (Meta).
//
// # Format
//
// All integers are big-endian. A file is a 12-byte header and a sequence
// of records:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+---------------------------------------------------------------+
//	| magic "PLLEASES" (8 bytes)                                    |
//	+---------------------------------------------------------------+
//	| format version = 1                                            |
//	+---------------------------------------------------------------+
//	| record ...                                                    |
//
// Each record:
//
//	+---------------------------------------------------------------+
//	| payload length (3 to 2380)                                    |
//	+---------------------------------------------------------------+
//	| CRC-32C (Castagnoli) of type and payload                      |
//	+---------------+-----------------------------------------------+
//	| type          | payload ...                                   |
//	+---------------+-----------------------------------------------+
//
//	type 1, put      the whole lease (72 bytes and the description):
//	                 protocol, origin, flags, external port, internal and
//	                 remote endpoints (16-byte addresses, IPv4 mapped),
//	                 PCP nonce, created and expires in Unix nanoseconds
//	                 (expires 0: permanent), description (appendPut)
//	type 2, remove   protocol and external port (3 bytes)
//	type 3, meta     epoch start in Unix nanoseconds and BOOTID (12 bytes)
//	type 4, put      a put with a pinhole ID and filters (appendPut); a
//	                 lease without them is written as type 1
//	type 5, remove   a pinhole removed: protocol and UniqueID (3 bytes)
//
// Replay applies records in order: a later put of a (protocol, external
// port), or of a pinhole's UniqueID, replaces the earlier one, a remove
// deletes it, the last meta record wins. A type-1 record's remote peer
// comes back as one host filter. Files written before types 4 and 5
// existed load unchanged (the header's version stays 1); an older
// portleased skips type 4 and 5 records as damaged. A description longer than 1024 bytes is cut to 1024 bytes at a
// character boundary (UPnP's own limit, 256, is below it). Times are kept
// to the nanosecond between the years 1678 and 2262; an IPv6 zone is not
// kept.
//
// # Recovery
//
// Open never fails on what it reads; it loses the records it cannot read
// and logs each damaged stretch at Warn with its "offset":
//   - a record cut short at the end of the file (a torn last write) is
//     dropped;
//   - a record with a bad checksum, type or payload is skipped by its
//     length when a good record (or the end of the file) follows it, so
//     only that record is lost; otherwise, and when the length itself is
//     implausible, reading resumes at the next offset where a record
//     validates;
//   - a file with another magic or version is not read at all: it is kept
//     aside as PATH.unreadable and a new one is started;
//   - leases that have ended are dropped.
//
// Open then writes what it kept into PATH.tmp, syncs it, renames it over
// PATH and syncs the directory, and appends to it from then on through an
// O_APPEND descriptor. A Commit whose write or fsync fails is cut back off
// the file (ftruncate to the last durable length) and returns the error;
// if even that fails, every later Commit fails rather than claim
// durability.
//
// # Compaction
//
// The File remembers where each live lease's latest put lies (a map from
// key to offset and size, 24 bytes of heap per lease measured with 100,000
// leases) and how many bytes the live records take. When the file grows
// past twice that plus 1 MiB, it is compacted in the background: the live
// records are read back from the file by offset into PATH.tmp, the records
// committed meanwhile are copied after them, and the result replaces PATH
// (fsync, rename, directory fsync). Commit waits only for the last step,
// under the lock: copying the latest tail, the fsync, the rename and the
// directory fsync.
//
// # Figures
//
// Measured on the development VM (2 shared vCPUs, ext4 on a virtual disk,
// Go 1.26), go test -bench . (bench_test.go):
//
//	Commit, batch of 1                 0.23-0.33 ms   (one write, one fsync)
//	Commit, batch of 100               0.27-0.76 ms   (2.7-7.6 us a lease)
//	Open, 100,000 leases               0.22-0.32 s    (read, replay, rewrite, fsyncs)
//	index held by File                 23.7 bytes a live lease
//	compaction, 100,000 leases         90 ms in the background,
//	                                   9 ms of it holding Commit
//	compaction, 1 MiB file, 2 KB live  8 ms, 2 ms of it holding Commit
//
// The ranges are the spread of runs on a shared machine; fsync dominates
// every Commit, so batching is what makes durability cheap.
package statefile
