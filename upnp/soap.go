package upnp

import (
	"errors"
	"io"
	"strconv"
	"strings"
)

// Namespaces of a SOAP 1.1 envelope as UPnP profiles it (UDA 1.1 §3.2.1).
const (
	soapEnvNS      = "http://schemas.xmlsoap.org/soap/envelope/"
	soapEncodingNS = "http://schemas.xmlsoap.org/soap/encoding/"
	controlNS      = "urn:schemas-upnp-org:control-1-0"
)

// envelopeStart and envelopeEnd surround the body of every envelope this
// package writes (UDA 1.1 §3.2.1 and §3.2.2).
const (
	envelopeStart = "<?xml version=\"1.0\"?>\r\n" +
		"<s:Envelope xmlns:s=\"" + soapEnvNS + "\" s:encodingStyle=\"" + soapEncodingNS + "\"><s:Body>"
	envelopeEnd = "</s:Body></s:Envelope>"
)

// Arg is an argument of an action or of its response, in order.
type Arg struct {
	Name, Value string
}

// Action is a control action (UDA 1.1 §3.2.1): the request a control point
// POSTs to a service's control URL.
type Action struct {
	// ServiceType is the service's type, the namespace of the action
	// element and the part before "#" in SOAPACTION.
	ServiceType string
	// Name is the action's name, "AddPortMapping".
	Name string
	// Args are the in arguments, in the order of the service description:
	// UDA 1.1 §3.2.1 requires it and some routers read arguments by
	// position.
	Args []Arg
}

// SOAPAction returns the value of the SOAPACTION header of the action's
// request, quotes included (UDA 1.1 §3.2.1):
// "urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping".
func (a Action) SOAPAction() string {
	return `"` + a.ServiceType + "#" + a.Name + `"`
}

// Get returns the value of the first argument named name, compared exactly
// and then without regard to case, and whether there is one.
func (a Action) Get(name string) (string, bool) { return getArg(a.Args, name) }

// AppendEnvelope appends the body of the action's request to b (UDA 1.1
// §3.2.1):
//
//	<?xml version="1.0"?>
//	<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
//	 s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>
//	<u:actionName xmlns:u="serviceType"><argName>value</argName>…</u:actionName>
//	</s:Body></s:Envelope>
//
// on two lines (the XML declaration, CRLF, the envelope), values XML-escaped
// and every argument written with a start and an end tag, never as an empty
// element, which some routers' parsers do not know. Names are written as
// they are and must be XML names.
func (a Action) AppendEnvelope(b []byte) []byte {
	b = append(b, envelopeStart...)
	b = append(b, "<u:"...)
	b = append(b, a.Name...)
	b = append(b, ` xmlns:u="`...)
	b = appendXMLAttr(b, a.ServiceType)
	b = append(b, `">`...)
	for _, arg := range a.Args {
		b = appendElement(b, arg.Name, arg.Value)
	}
	b = append(b, "</u:"...)
	b = append(b, a.Name...)
	b = append(b, '>')
	return append(b, envelopeEnd...)
}

// ParseActionRequest decodes a control request on the device side (UDA 1.1
// §3.2.1). soapAction is the SOAPACTION header, quoted or not. It reads at
// most MaxActionRequestSize bytes from r (ErrTooLarge beyond). The body must
// be an Envelope holding a Body whose first element is the action; names
// match whatever their prefix. The result carries the service type and
// action of the header and the arguments in order, values as sent.
//
// Errors: ErrActionMismatch (answer 401 Invalid Action) when the header is
// not "serviceType#actionName" or the body's action element has another
// name, or a namespace other than the header's service type (a missing
// namespace is accepted); ErrMalformed (answer 402 Invalid Args, or an HTTP
// 400 for XML that does not parse) for anything else.
func ParseActionRequest(r io.Reader, soapAction string) (Action, error) {
	if _, _, ok := SplitSOAPAction(soapAction); !ok {
		return Action{}, mismatch("SOAPACTION %q is not \"serviceType#actionName\"", truncate(soapAction))
	}
	data, err := readLimited(r, MaxActionRequestSize)
	if err != nil {
		return Action{}, err
	}
	return ParseActionRequestBody(data, soapAction)
}

// ParseActionRequestBody is ParseActionRequest of a body already read,
// for a server that reads it into a buffer of its Content-Length. Beyond
// body it allocates no more than the strings of the result (names and
// values, together at most the body's length, twice that for a Latin-1
// body), a slice of at most 64 arguments and the error: a 64 KiB body of
// any shape costs less than 128 KiB more (BenchmarkParseActionRequest64KiB).
// A body longer than MaxActionRequestSize is ErrTooLarge.
func ParseActionRequestBody(body []byte, soapAction string) (Action, error) {
	serviceType, name, ok := SplitSOAPAction(soapAction)
	if !ok {
		return Action{}, mismatch("SOAPACTION %q is not \"serviceType#actionName\"", truncate(soapAction))
	}
	if len(body) > MaxActionRequestSize {
		return Action{}, ErrTooLarge
	}
	local, space, args, err := scanAction(body)
	if err != nil {
		return Action{}, err
	}
	if local != name {
		return Action{}, mismatch("body holds action %q, SOAPACTION names %q", local, name)
	}
	if space != "" && space != serviceType {
		return Action{}, mismatch("body action is of service %q, SOAPACTION names %q", space, serviceType)
	}
	return Action{ServiceType: serviceType, Name: name, Args: args}, nil
}

// SplitSOAPAction splits a SOAPACTION header value (UDA 1.1 §3.2.1),
// `"serviceType#actionName"`, with or without its quotes. The service type
// must be text XML can hold and the action an XML name.
func SplitSOAPAction(v string) (serviceType, name string, ok bool) {
	v = strings.TrimSpace(v)
	v = strings.TrimSuffix(strings.TrimPrefix(v, `"`), `"`)
	i := strings.LastIndexByte(v, '#')
	if i <= 0 || !isXMLString(v[:i]) || !isNCName(v[i+1:]) {
		return "", "", false
	}
	return v[:i], v[i+1:], true
}

// envelopeBody parses a SOAP envelope and returns the first element inside
// its Body.
func envelopeBody(data []byte) (*node, error) {
	root, err := parseXML(data)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(root.name.Local, "Envelope") {
		return nil, malformed("SOAP root element is <%s>, not <Envelope>", root.name.Local)
	}
	body := root.child("Body")
	if body == nil {
		return nil, malformed("SOAP envelope without a Body")
	}
	if len(body.children) == 0 {
		return nil, malformed("SOAP Body without an element")
	}
	return body.children[0], nil
}

// readArgs returns the child elements of an action or response element as
// arguments.
func readArgs(el *node) ([]Arg, error) {
	if len(el.children) == 0 {
		return nil, nil
	}
	args := make([]Arg, 0, len(el.children))
	for _, c := range el.children {
		if !isNCName(c.name.Local) {
			return nil, malformed("SOAP argument name %q", truncate(c.name.Local))
		}
		args = append(args, Arg{Name: c.name.Local, Value: c.value()})
	}
	return args, nil
}

// getArg returns the value of the first argument named name, compared
// exactly, else without regard to case (the same router writes NewUptime in
// one service and NewUpTime in another).
func getArg(args []Arg, name string) (string, bool) {
	for _, a := range args {
		if a.Name == name {
			return a.Value, true
		}
	}
	for _, a := range args {
		if strings.EqualFold(a.Name, name) {
			return a.Value, true
		}
	}
	return "", false
}

// Response is the successful answer to an action (UDA 1.1 §3.2.2).
type Response struct {
	// Action is the action's name, without the "Response" suffix of the
	// response element.
	Action string
	// Args are the out arguments in the order received, values as sent.
	Args []Arg
}

// Get returns the value of the first argument named name, compared exactly
// and then without regard to case, and whether there is one.
func (r Response) Get(name string) (string, bool) { return getArg(r.Args, name) }

// AppendEnvelope appends the body of the response to b, for the device side
// (UDA 1.1 §3.2.2):
//
//	<?xml version="1.0"?>
//	<s:Envelope xmlns:s="…" s:encodingStyle="…"><s:Body>
//	<u:actionNameResponse xmlns:u="serviceType"><argName>value</argName>…
//	</u:actionNameResponse></s:Body></s:Envelope>
//
// A value holding "<" (NewPortListing's XML document) goes into a CDATA
// section, as miniupnpd sends it; control points whose XML parser does not
// decode entities (miniupnpc's) then read it back whole. Other values are
// XML-escaped. Names are written as they are and must be XML names.
func (r Response) AppendEnvelope(serviceType string, b []byte) []byte {
	b = append(b, envelopeStart...)
	b = append(b, "<u:"...)
	b = append(b, r.Action...)
	b = append(b, `Response xmlns:u="`...)
	b = appendXMLAttr(b, serviceType)
	b = append(b, `">`...)
	for _, arg := range r.Args {
		b = append(b, '<')
		b = append(b, arg.Name...)
		b = append(b, '>')
		b = appendXMLValue(b, arg.Value)
		b = append(b, "</"...)
		b = append(b, arg.Name...)
		b = append(b, '>')
	}
	b = append(b, "</u:"...)
	b = append(b, r.Action...)
	b = append(b, "Response>"...)
	return append(b, envelopeEnd...)
}

// ParseResponse decodes the body of an answer to action on the control
// point side (UDA 1.1 §3.2.2), from an HTTP 200 or 500 response alike. It
// reads at most MaxResponseSize bytes from r (ErrTooLarge beyond). It is
// tolerant: any namespace prefix on the envelope and the response element,
// element names in any case, white space between elements; argument values
// are kept as sent (the decoders of this package trim them).
//
// When the Body holds a SOAP Fault, ParseResponse returns a *Fault (see
// errors.As and FaultCode) read from its UPnPError detail (UDA 1.1 §3.2.2),
// wherever in the Fault it sits and whatever its prefix; a Fault without
// one gives Code 0 and the faultstring. When the first element of the Body
// is neither a Fault nor "actionResponse", the error wraps
// ErrActionMismatch; an empty action accepts any element ending in
// "Response".
func ParseResponse(r io.Reader, action string) (Response, error) {
	data, err := readLimited(r, MaxResponseSize)
	if err != nil {
		return Response{}, err
	}
	el, err := envelopeBody(data)
	if err != nil {
		return Response{}, err
	}
	local := el.name.Local
	if strings.EqualFold(local, "Fault") {
		return Response{}, parseFault(el)
	}
	if !isNCName(local) {
		return Response{}, malformed("SOAP response element name %q", truncate(local))
	}
	const suffix = "Response"
	n := len(local) - len(suffix)
	if n <= 0 || !strings.EqualFold(local[n:], suffix) ||
		action != "" && !strings.EqualFold(local[:n], action) {
		return Response{}, mismatch("body holds <%s>, not <%sResponse>", truncate(local), action)
	}
	args, err := readArgs(el)
	if err != nil {
		return Response{}, err
	}
	return Response{Action: local[:n], Args: args}, nil
}

// Fault is a UPnP error, the UPnPError detail of a SOAP Fault (UDA 1.1
// §3.2.2): what a device answers instead of a response, with HTTP status
// 500. ParseResponse returns it, PortMappingArgs builds it, and
// AppendFaultEnvelope writes it.
type Fault struct {
	// Code is errorCode (see ErrorCode), or 0 for a SOAP Fault without a
	// UPnPError.
	Code int
	// Description is errorDescription, or the faultstring of a SOAP Fault
	// without a UPnPError.
	Description string
}

// Error returns "upnp: error 718 ConflictInMappingEntry", followed by ": "
// and the description when the description says more than the code's name.
func (f *Fault) Error() string {
	name := ErrorCode(f.Code).name()
	desc := strings.TrimSpace(f.Description)
	var b strings.Builder
	if f.Code == 0 {
		b.WriteString("upnp: SOAP fault")
		if desc != "" {
			b.WriteString(": ")
			b.WriteString(desc)
		}
		return b.String()
	}
	b.WriteString("upnp: error ")
	b.WriteString(strconv.Itoa(f.Code))
	switch {
	case name != "" && len(desc) >= len(name) && strings.EqualFold(desc[:len(name)], name):
		// "Invalid Args (NewExternalPort …)" already starts with the name.
		b.WriteString(" ")
		b.WriteString(desc)
	case name != "":
		b.WriteString(" ")
		b.WriteString(name)
		if desc != "" {
			b.WriteString(": ")
			b.WriteString(desc)
		}
	case desc != "":
		b.WriteString(": ")
		b.WriteString(desc)
	}
	return b.String()
}

// ErrorCode returns f.Code as an ErrorCode, to compare with the constants.
func (f *Fault) ErrorCode() ErrorCode { return ErrorCode(f.Code) }

// FaultCode returns the code of the *Fault in err's chain, and whether there
// is one: code, ok := FaultCode(err); ok && code == ConflictInMappingEntry.
func FaultCode(err error) (ErrorCode, bool) {
	var f *Fault
	if errors.As(err, &f) {
		return ErrorCode(f.Code), true
	}
	return 0, false
}

// parseFault reads a SOAP Fault element. Devices differ in where they put
// UPnPError (inside detail, as UDA 1.1 §3.2.2 has it, or straight inside
// Fault), in prefixes and in case (faultCode, faultString: tailscale's
// portmapper tests quote such a router), so it searches the whole Fault.
func parseFault(el *node) *Fault {
	f := &Fault{}
	if ue := el.find("UPnPError"); ue != nil {
		if c := ue.find("errorCode"); c != nil {
			f.Code, _ = strconv.Atoi(strings.TrimSpace(c.text))
		}
		if d := ue.find("errorDescription"); d != nil {
			f.Description = strings.TrimSpace(d.text)
		}
		return f
	}
	if c := el.find("errorCode"); c != nil {
		f.Code, _ = strconv.Atoi(strings.TrimSpace(c.text))
	}
	if d := el.find("errorDescription"); d != nil {
		f.Description = strings.TrimSpace(d.text)
	} else if s := el.child("faultstring"); s != nil {
		f.Description = strings.TrimSpace(s.text)
	}
	return f
}

// AppendFaultEnvelope appends the body of an error response to b, for the
// device side (UDA 1.1 §3.2.2), to send with HTTP status 500:
//
//	<?xml version="1.0"?>
//	<s:Envelope xmlns:s="…" s:encodingStyle="…"><s:Body><s:Fault>
//	<faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>
//	<detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0">
//	<errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription>
//	</UPnPError></detail></s:Fault></s:Body></s:Envelope>
//
// An empty description is written as the code's name (ErrorCode.String).
func AppendFaultEnvelope(b []byte, code int, description string) []byte {
	if description == "" {
		description = ErrorCode(code).name()
	}
	b = append(b, envelopeStart...)
	b = append(b, "<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>"+
		"<detail><UPnPError xmlns=\""+controlNS+"\"><errorCode>"...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, "</errorCode>"...)
	b = appendElement(b, "errorDescription", description)
	b = append(b, "</UPnPError></detail></s:Fault>"...)
	return append(b, envelopeEnd...)
}
