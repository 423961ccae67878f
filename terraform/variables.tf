variable "github_repository" {
  description = "The repository whose workflows may assume the roles, as owner/name."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "Use owner/name, e.g. acme/tweets-pipeline."
  }
}

variable "deploy_branch" {
  description = "The branch whose pushes may deploy."
  type        = string
  default     = "main"
}

variable "project" {
  description = "[project] name in flixops.toml."
  type        = string
}

variable "env" {
  description = "The flixops environment these roles deploy (the NAME of [env.NAME])."
  type        = string
}

variable "bucket" {
  description = "The environment's data bucket (flixops.toml `bucket`, default {project}-{env}-tweets)."
  type        = string
}

variable "prefix" {
  description = "The environment's key prefix (flixops.toml `prefix`)."
  type        = string
  default     = "flixops"
}

variable "region" {
  description = "The region the environment is deployed to."
  type        = string
}

variable "create_oidc_provider" {
  description = "Create the account's GitHub OIDC provider; false when the account already has one."
  type        = bool
  default     = true
}
