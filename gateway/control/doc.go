// Package control is portleased's control API for its operator: versioned
// JSON over HTTP on a Unix socket that reaches no network, and the client
// the operator command (portleased -c) uses.
//
// # API, version 1
//
// Every path begins with /v1; a later version takes /v2 and both may be
// served at once. Every body is a JSON object with "version": 1.
//
//	GET    /v1/leases                  every lease, pinholes included; query
//	                                   filters, all optional and combined:
//	                                   host=ADDR protocol=tcp|udp
//	                                   origin=natpmp|pcp|upnp ports=LO-HI
//	                                   (the external port, a pinhole's own)
//	GET    /v1/leases/{protocol}/{port} the IPv4 lease of that external port
//	DELETE /v1/leases/{protocol}/{port} deletes it (whatever its origin or
//	                                   nonce: the operator overrides them)
//	GET    /v1/pinholes/{id}           the IPv6 pinhole of that id (UPnP
//	                                   UniqueID, also given to PCP's)
//	DELETE /v1/pinholes/{id}           deletes it
//	DELETE /v1/hosts/{addr}/leases     deletes every lease of that internal
//	                                   address, every protocol and origin
//	GET    /v1/counters                the table's counters since its start
//
// A lease is a Lease; a listing a Leases, a deletion a Deleted, the
// counters a Counters. An error is an Error with the HTTP status: 400 for
// a malformed request (unknown protocol, bad address, bad port range), 404
// for no such lease, 403 for a peer the socket does not admit, 405 for a
// method a path does not take, 500 when the table failed.
//
// # Who may connect
//
// The socket file is owned by root and the daemon's group, mode 0660, in a
// directory of mode 0750 (Listen): the kernel refuses anyone else at
// connect(2). Every connection is checked again with the peer's
// credentials (SO_PEERCRED, SO_PEERGROUPS, socket(7)), so that a socket
// made reachable by mistake (a chmod, a bind mount) still admits only root,
// the daemon's own user, and the members of its group (Access); the others
// get 403 and the daemon logs them, at most once a minute.
package control
