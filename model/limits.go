package model

// MaxApplyObjects is the most objects (the cluster block, networks and
// workloads together) one apply may declare. The HCL decoder refuses more
// before anything is sent, and the API server's limit on an ApplyRequest
// is meant to be this number too, so what validates locally is not
// refused for its size.
const MaxApplyObjects = 100000
