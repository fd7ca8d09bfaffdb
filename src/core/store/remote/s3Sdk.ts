/**
 * The parts of the AWS SDK that S3Backend uses, loaded together on first use. Naming them
 * (rather than importing the whole client) lets the bundler leave out the SDK's other
 * hundred-odd commands and the aggregated `S3` class: less to evaluate when a copy starts
 * (an event-loop stall in the extension host otherwise) and less memory held.
 */
export {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
