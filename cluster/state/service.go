package state

import (
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Service returns a service by its key (model.ServiceKey, "network/name").
func (t *Tx) Service(key string) (*sdnv1.Service, bool) {
	return get(t, bucketServices, key, &sdnv1.Service{})
}

// Services lists the services of a network by key, or every service when
// network is "".
func (t *Tx) Services(network string) []*sdnv1.Service {
	prefix := ""
	if network != "" {
		prefix = network + "/"
	}
	return list(t, bucketServices, prefix, func() *sdnv1.Service { return &sdnv1.Service{} })
}

// HasServices reports whether any service is stored.
func (t *Tx) HasServices() bool {
	k, _ := t.bucket(bucketServices).Cursor().First()
	return k != nil
}

// PutService stores a service (its ranges, input only, are not stored).
func (t *Tx) PutService(v *sdnv1.Service) error {
	v.Ranges = nil
	return put(t, bucketServices, model.ServiceKey(v), v)
}

// DeleteService removes a service by key.
func (t *Tx) DeleteService(key string) error {
	return t.deleteRecord(bucketServices, []byte(key))
}

// ServiceEndpoints returns the derived endpoints of a service by its key.
func (t *Tx) ServiceEndpoints(key string) (*sdnv1.ServiceEndpoints, bool) {
	return get(t, bucketEndpoints, key, &sdnv1.ServiceEndpoints{})
}

// AllServiceEndpoints lists the endpoints of the services of a network by
// service key, or of every service when network is "".
func (t *Tx) AllServiceEndpoints(network string) []*sdnv1.ServiceEndpoints {
	prefix := ""
	if network != "" {
		prefix = network + "/"
	}
	return list(t, bucketEndpoints, prefix, func() *sdnv1.ServiceEndpoints { return &sdnv1.ServiceEndpoints{} })
}

// PutServiceEndpoints stores a service's endpoints.
func (t *Tx) PutServiceEndpoints(ep *sdnv1.ServiceEndpoints) error {
	return put(t, bucketEndpoints, ep.Service, ep)
}

// DeleteServiceEndpoints removes a service's endpoints.
func (t *Tx) DeleteServiceEndpoints(key string) error {
	return t.deleteRecord(bucketEndpoints, []byte(key))
}
