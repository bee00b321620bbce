# tflint configuration for infra/, used by scripts/terraform-check.sh.
# Only the terraform ruleset bundled with tflint is used: no plugin has a
# "source", so `tflint --init` is never needed and nothing is downloaded.

config {
  # Inspect the example's call into the local module too.
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "recommended"
}

# Beyond "recommended": the rules of the "all" preset that suit these modules.
rule "terraform_comment_syntax" {
  enabled = true
}

rule "terraform_documented_outputs" {
  enabled = true
}

rule "terraform_documented_variables" {
  enabled = true
}

rule "terraform_naming_convention" {
  enabled = true
}

rule "terraform_standard_module_structure" {
  enabled = true
}

rule "terraform_unused_required_providers" {
  enabled = true
}
