# The object storage for Caravan's backups and audit checkpoints: versioned, Object Lock in
# compliance mode (nobody, not even the account root, deletes a backup before its retention
# ends), encrypted with a KMS key of its own, never public, TLS only.
#   terraform init && terraform apply -var bucket_name=acme-caravan-backups
# Then: CARAVAN_BACKUP_URL=s3://<bucket>/caravan CARAVAN_BACKUP_KMS_KEY_ID=<key arn>
#       CARAVAN_BACKUP_LOCK_MODE=COMPLIANCE CARAVAN_BACKUP_RETENTION_DAYS=<days>

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

variable "bucket_name" {
  type        = string
  description = "Globally unique name of the backup bucket."
}

variable "retention_days" {
  type        = number
  default     = 35
  description = "Object Lock retention of every backup object, in days."
}

resource "aws_kms_key" "backups" {
  description             = "Caravan backups"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

resource "aws_s3_bucket" "backups" {
  bucket              = var.bucket_name
  object_lock_enabled = true
}

resource "aws_s3_bucket_versioning" "backups" {
  bucket = aws_s3_bucket.backups.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "backups" {
  bucket = aws_s3_bucket.backups.id
  rule {
    default_retention {
      mode = "COMPLIANCE"
      days = var.retention_days
    }
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "backups" {
  bucket = aws_s3_bucket.backups.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.backups.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "backups" {
  bucket                  = aws_s3_bucket.backups.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_policy" "tls_only" {
  bucket = aws_s3_bucket.backups.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.backups.arn, "${aws_s3_bucket.backups.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

output "bucket" {
  value = aws_s3_bucket.backups.id
}

output "kms_key_arn" {
  value = aws_kms_key.backups.arn
}
