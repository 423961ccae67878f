output "plan_role_arn" {
  description = "Store as the repository variable FLIXOPS_PLAN_ROLE_ARN."
  value       = aws_iam_role.ci["plan"].arn
}

output "deploy_role_arn" {
  description = "Store as the repository variable FLIXOPS_DEPLOY_ROLE_ARN."
  value       = aws_iam_role.ci["deploy"].arn
}
