# Inline cors_rule / server_side_encryption_configuration: provider 3.39 has
# no separate aws_s3_bucket_*_configuration resources; 5.x still accepts the
# inline blocks (deprecated there, with a warning).
resource "aws_s3_bucket" "circleci" {
  bucket        = local.bucket_name
  force_destroy = var.bucket_force_destroy

  cors_rule {
    allowed_methods = ["GET"]
    allowed_origins = ["*"]
    allowed_headers = ["*"]
    max_age_seconds = 3600
  }

  server_side_encryption_configuration {
    rule {
      apply_server_side_encryption_by_default {
        sse_algorithm     = var.bucket_sse_algorithm
        kms_master_key_id = var.bucket_kms_key_id != "" ? var.bucket_kms_key_id : null
      }
    }
  }

  tags = merge(local.tags, { Name = local.bucket_name })
}

resource "aws_s3_bucket_public_access_block" "circleci" {
  bucket                  = aws_s3_bucket.circleci.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Nomad clients announce their shutdown here so running builds can drain.
# Named <prefix>-shutdown-queue; the vendor's is <prefix>_shutdown_queue
# (enterprise-setup modules/aws_sqs), so neither name is shared with it.
resource "aws_sqs_queue" "shutdown" {
  name = "${var.prefix}-shutdown-queue"
  tags = merge(local.tags, { Name = "${var.prefix}-shutdown-queue" })
}
