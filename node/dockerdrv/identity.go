package dockerdrv

// identity is the workload's name and labels for a Docker endpoint.
type identity struct {
	name   string
	labels map[string]string
}

// identify names an endpoint's workload "docker-" and the first 12
// characters of the endpoint id: Docker tells a network driver neither the
// container's name nor its labels (CreateEndpoint and Join carry only the
// exposed and published ports), and a new endpoint id at every start.
func identify(eid string) identity {
	return identity{name: "docker-" + short(eid)}
}
