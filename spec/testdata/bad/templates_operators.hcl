cluster {
  host_prefix = 20 + 3
  mtu         = --1
  cidr        = "10.${1}.0.0/16"
  isolation   = <<EOT
%{ if true }flat%{ endif }
EOT
}
