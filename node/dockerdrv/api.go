package dockerdrv

// The wire types of Docker's remote network-driver protocol (libnetwork's
// docs/remote.md and drivers/remote/api): JSON bodies POSTed to
// /Plugin.Activate and /NetworkDriver.<Method>. Only the fields sdn reads
// or answers are declared; Docker ignores what a driver leaves out.

// errResponse is every method's answer when it fails: HTTP 200 with Err set
// (the protocol's way to say "understood, and refused"); Docker shows
// "remote: <Err>" to the user.
type errResponse struct {
	Err string `json:",omitempty"`
}

type activateResponse struct {
	Implements []string
}

type capabilitiesResponse struct {
	Scope             string
	ConnectivityScope string
}

// ipamData is one address pool Docker's IPAM driver handed the network.
type ipamData struct {
	AddressSpace string
	Pool         string
	Gateway      string
}

type createNetworkRequest struct {
	NetworkID string
	Options   map[string]any
	IPv4Data  []ipamData
	IPv6Data  []ipamData
}

type networkRequest struct {
	NetworkID string
}

// endpointInterface is the endpoint's address and MAC: in CreateEndpoint's
// request what Docker's IPAM chose (empty with the null IPAM driver), in its
// response what the driver chose.
type endpointInterface struct {
	Address     string `json:",omitempty"`
	AddressIPv6 string `json:",omitempty"`
	MacAddress  string `json:",omitempty"`
}

type createEndpointRequest struct {
	NetworkID  string
	EndpointID string
	Interface  *endpointInterface
	Options    map[string]any
}

type createEndpointResponse struct {
	Interface *endpointInterface `json:",omitempty"`
}

type endpointRequest struct {
	NetworkID  string
	EndpointID string
}

type endpointInfoResponse struct {
	Value map[string]any
}

type joinRequest struct {
	NetworkID  string
	EndpointID string
	SandboxKey string
	Options    map[string]any
}

type interfaceName struct {
	SrcName   string
	DstPrefix string
}

type staticRoute struct {
	Destination string
	RouteType   int // 0: via NextHop, 1: connected
	NextHop     string
}

type joinResponse struct {
	InterfaceName         interfaceName
	Gateway               string
	StaticRoutes          []staticRoute `json:",omitempty"`
	DisableGatewayService bool
}
