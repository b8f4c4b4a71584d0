// AWSGuard (https://github.com/pulumi/pulumi-awsguard): Pulumi's published rule set for AWS, every
// rule advisory, so that a preview reports each finding and the tests assert exactly the
// documented set (README, "AWSGuard's findings").
"use strict";
const { AwsGuard } = require("@pulumi/awsguard");

new AwsGuard({ all: "advisory" });
